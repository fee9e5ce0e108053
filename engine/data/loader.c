/* loader.c - placeholder until its module lands. */
