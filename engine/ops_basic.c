/* ops_basic.c - placeholder until its module lands. */
