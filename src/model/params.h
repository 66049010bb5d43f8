/* What loaders (src/io/model_dir.c) need from the model without seeing
 * its struct: a model whose parameters are allocated but not initialised,
 * and read access to them. Everything else goes through include/slm.h. */
#ifndef SLM_MODEL_PARAMS_H
#define SLM_MODEL_PARAMS_H

#include "slm.h"

/* Allocates a model with the tensor table and parameters of cfg (zeroed,
 * not initialised). The config must already be valid. */
int gpt_model_alloc(const slm_config *cfg, slm_model **out, char *err, size_t errlen);
/* The parameters, laid out as the tensor table says (slm_model_tensor). */
const float *gpt_model_param_data(const slm_model *m);

#endif
