/* Deterministic random numbers: splitmix64-seeded xoshiro256** with uniform
 * and normal draws. The whole state is a value the caller owns (and can save
 * in a checkpoint), never a global. */
#ifndef SLM_CORE_RNG_H
#define SLM_CORE_RNG_H

#include <stdint.h>

typedef struct {
    uint64_t s[4];
} rng_state;

void rng_seed(rng_state *r, uint64_t seed);
uint64_t rng_next(rng_state *r);
/* Uniform in [0, 1) with 24 random bits (exactly representable as float). */
float rng_uniform(rng_state *r);
/* Uniform integer in [0, n), n > 0, without modulo bias. */
uint64_t rng_below(rng_state *r, uint64_t n);
/* Standard normal (Box–Muller, one draw per call). */
double rng_normal(rng_state *r);

#endif
