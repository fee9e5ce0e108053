/* eval_train.c - placeholder until its module lands. */
