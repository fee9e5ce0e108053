/* dataset.c - placeholder until its module lands. */
