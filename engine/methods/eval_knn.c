/* eval_knn.c - placeholder until its module lands. */
