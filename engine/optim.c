/* optim.c - placeholder until its module lands. */
