/* layers.c - placeholder until its module lands. */
