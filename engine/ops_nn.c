/* ops_nn.c - placeholder until its module lands. */
