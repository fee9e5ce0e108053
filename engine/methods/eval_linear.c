/* eval_linear.c - placeholder until its module lands. */
