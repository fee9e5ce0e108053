/* png_grid.c - placeholder until its module lands. */
