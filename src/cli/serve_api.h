/* Helpers shared by the endpoint handlers of slm serve (serve_api.c,
 * serve_generate.c): JSON bodies in, JSON replies out. */
#ifndef SLM_CLI_SERVE_API_H
#define SLM_CLI_SERVE_API_H

#include "cli/serve.h"
#include "io/json.h"

/* Finishes w into out as an application/json reply with `status`. */
void api_reply_json(serve_reply *out, json_writer *w, int status);
/* Parses a body that must be a JSON object; on failure fills out with 400
 * and returns -1 (doc then needs no json_free). */
int api_parse_object(const char *body, size_t len, json_doc *doc, serve_reply *out);
/* Optional members: 0 if absent or null, 1 if read into *val, -1 with a 400
 * in out if of the wrong type or outside [lo, hi] ((lo, hi] with open_lo). */
int api_get_int(const json_value *obj, const char *key, int64_t lo, int64_t hi, int64_t *val,
                serve_reply *out);
int api_get_number(const json_value *obj, const char *key, double lo, double hi, int open_lo,
                   double *val, serve_reply *out);
int api_get_bool(const json_value *obj, const char *key, int *val, serve_reply *out);
/* An array of token ids of the model's vocabulary into a malloc'd *ids. */
int api_get_ids(serve_ctx *c, const json_value *arr, const char *key, int32_t **ids, int *n,
                serve_reply *out);
/* {"id": ID, "text": the token's bytes, lossy UTF-8} */
void api_write_token(serve_ctx *c, json_writer *w, int32_t id);

#endif
