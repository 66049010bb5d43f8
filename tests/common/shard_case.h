/* What the sharded-pass tests share (test_train_shards.c: fp32 and the
 * process's bf16 path; test_train_bf16_storage.c: bf16 activation storage):
 * a training pass split over two threads' shards (model/gpt.h) against the
 * same pass in one shard. */
#ifndef SLM_TESTS_SHARD_CASE_H
#define SLM_TESTS_SHARD_CASE_H

/* A 2-layer model (dropout p) trained on B sequences of 512 tokens (512
 * rows per shard at least: split on two threads) with 2 threads and with
 * one: the 2-thread pass ran on 2 shards, the 1-thread pass on one; the
 * losses agree to 1e-6 relative and every gradient to rtol (and rtol·1e-2
 * of the largest gradient, absolute), whether backward adds to gradients
 * already there (slm_model_backward) or overwrites garbage
 * (gpt_backward_overwrite). B odd splits unevenly. */
void shard_check_training(int dtype, float dropout, int B, double rtol);

#endif
