/* test_ctx.c - placeholder, filled below. */
int main(void) { return 77; }
