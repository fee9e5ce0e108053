/* checkpoint.c - placeholder until its module lands. */
