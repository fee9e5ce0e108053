/* text.c - placeholder until its module lands. */
