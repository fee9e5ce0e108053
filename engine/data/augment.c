/* augment.c - placeholder until its module lands. */
