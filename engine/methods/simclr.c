/* simclr.c - placeholder until its module lands. */
