/* mpi_allreduce.c - MPI_Allreduce (float sum) latency and bandwidth between the ranks of one
 * mpirun, for messages of 4 B to 64 MiB: what a data-parallel step pays to sum its gradients.
 *
 *   mpirun -np 2 build/bench/bench_mpi_allreduce [--rounds 5] [--max-mib 64]
 *
 * Each size runs `rounds` timed rounds (after one warm-up call) of enough calls to last ~50 ms;
 * a round's time is the slowest rank's (a collective ends when its last rank does), and the table
 * shows the median round and the best (on a shared machine, the best is the link, the median
 * includes the ranks' waits for a core). "bus" bandwidth is NCCL's convention, size * 2(n-1)/n / time: the bytes
 * each rank's link carries in a ring allreduce, comparable across rank counts. It does not train
 * anything; the projection in docs/distributed.md uses these figures.
 */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
	MPI_Init(&argc, &argv);
	int rank, size, rounds = 5;
	long max_mib = 64;
	MPI_Comm_rank(MPI_COMM_WORLD, &rank);
	MPI_Comm_size(MPI_COMM_WORLD, &size);
	for (int i = 1; i + 1 < argc; i += 2) {
		if (strcmp(argv[i], "--rounds") == 0) rounds = atoi(argv[i + 1]);
		else if (strcmp(argv[i], "--max-mib") == 0) max_mib = atol(argv[i + 1]);
	}
	if (rounds < 3) rounds = 3;
	if (rounds > 64) rounds = 64;
	size_t max_bytes = (size_t)max_mib << 20;
	float *send = malloc(max_bytes), *recv = malloc(max_bytes);
	if (!send || !recv) {
		fprintf(stderr, "bench_mpi_allreduce: out of memory for %ld MiB\n", max_mib);
		MPI_Abort(MPI_COMM_WORLD, 1);
	}
	for (size_t i = 0; i < max_bytes / sizeof(float); i++) send[i] = (float)(i % 97) * 0.01f;
	if (rank == 0) {
		printf("MPI_Allreduce (float sum), %d ranks, median of %d rounds\n", size, rounds);
		printf("%12s %8s %12s %12s %12s %12s\n", "bytes", "calls", "us/call", "us (best)", "algbw MB/s",
		       "busbw MB/s");
	}
	char json[8192];
	size_t at = (size_t)snprintf(json, sizeof json, "{\"bench\":\"mpi_allreduce\",\"ranks\":%d,\"rounds\":%d,\"sizes\":[",
	                             size, rounds);
	double t_round[64];
	int first = 1;
	for (size_t bytes = 4; bytes <= max_bytes; bytes *= 4) {
		int count = (int)(bytes / sizeof(float));
		MPI_Allreduce(send, recv, count, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);   /* warm-up */
		/* Calls per round: doubled until a batch lasts 20 ms on the slowest rank, at most 10000.
		 * A batch's time is the best of 3, so one wait for a core on a shared machine does not
		 * end the search at a batch too short to time. */
		int calls = 1;
		double t0;
		for (;;) {
			double batch = 1e30, slowest;
			for (int k = 0; k < 3; k++) {
				MPI_Barrier(MPI_COMM_WORLD);   /* a rank still printing is not the link */
				t0 = MPI_Wtime();
				for (int c = 0; c < calls; c++)
					MPI_Allreduce(send, recv, count, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
				double b = MPI_Wtime() - t0;
				if (b < batch) batch = b;
			}
			MPI_Allreduce(&batch, &slowest, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
			if (slowest >= 0.02 || calls >= 10000)
				break;
			calls *= 2;
		}
		for (int r = 0; r < rounds; r++) {
			MPI_Barrier(MPI_COMM_WORLD);
			t0 = MPI_Wtime();
			for (int c = 0; c < calls; c++)
				MPI_Allreduce(send, recv, count, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
			double t = (MPI_Wtime() - t0) / calls;
			MPI_Allreduce(&t, &t_round[r], 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
		}
		qsort(t_round, (size_t)rounds, sizeof t_round[0], cmp_double);
		double t = t_round[rounds / 2];
		double alg = (double)bytes / t / 1e6, bus = alg * 2.0 * (size - 1) / size;
		if (rank == 0) {
			printf("%12zu %8d %12.2f %12.2f %12.1f %12.1f\n", bytes, calls, t * 1e6, t_round[0] * 1e6, alg, bus);
			fflush(stdout);
			if (at < sizeof json - 128)
				at += (size_t)snprintf(json + at, sizeof json - at,
				                       "%s{\"bytes\":%zu,\"us\":%.3f,\"us_best\":%.3f,\"algbw_mb_s\":%.1f,\"busbw_mb_s\":%.1f}",
				                       first ? "" : ",", bytes, t * 1e6, t_round[0] * 1e6, alg, bus);
		}
		first = 0;
	}
	if (rank == 0)
		printf("%s]}\n", json);
	free(send);
	free(recv);
	MPI_Finalize();
	return 0;
}
