/* idx.c - placeholder until its module lands. */
