/* captions.c - placeholder until its module lands. */
