/* csv.c - placeholder until its module lands. */
