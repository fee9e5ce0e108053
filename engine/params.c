/* params.c - placeholder until its module lands. */
