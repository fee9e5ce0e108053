/* ops_loss.c - placeholder until its module lands. */
