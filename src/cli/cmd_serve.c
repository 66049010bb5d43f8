/* slm serve — an OpenAI-compatible HTTP server for a model, with a web page.
 * The pieces are described in serve.h. */
#include "cli/cli.h"
#include "cli/model_open.h"
#include "cli/options.h"
#include "cli/serve.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *help =
    "usage: slm serve -m DIR [--host 127.0.0.1] [--port 8080] [--parallel N]\n\n"
    "Serves the model over HTTP, compatible with OpenAI's API:\n"
    "  POST /v1/completions, /v1/chat/completions   (stream: true for server-sent events)\n"
    "  POST /v1/tokenize, /v1/detokenize, /v1/attention\n"
    "  GET  /v1/models, /health, /metrics (Prometheus), / (a web page)\n"
    "Ctrl-C or SIGTERM stops taking requests, finishes those in flight and exits 0.\n\n"
    "  -m, --model DIR       model directory (config.json + model.safetensors)\n"
    "  --host ADDR           address to listen on (default 127.0.0.1)\n"
    "  --port N              TCP port (default 8080; 0 = any free port)\n"
    "  --parallel N          requests generated at once, one KV cache each (default 4)\n"
    "  --queue N             requests that may wait for a slot; more get 503 (default 32)\n"
    "  --max-body N          largest request body in bytes; larger get 413 (default 1048576)\n"
    "  --threads N           threads (default: all cores)\n";

/* The model's name in replies: the directory's last component. */
static const char *model_name(const char *dir, char *buf, size_t len)
{
    snprintf(buf, len, "%s", dir);
    size_t n = strlen(buf);
    while (n > 1 && buf[n - 1] == '/') buf[--n] = '\0';
    const char *slash = strrchr(buf, '/');
    return slash && slash[1] ? slash + 1 : buf;
}

static void on_signal(int sig) { (void)sig; }

typedef struct {
    const char *dir, *host;
    int port, parallel, queue, max_body, threads;
} serve_args;

static int run(const serve_args *a, slm_model *m, slm_tokenizer *tok, const sigset_t *sigs)
{
    char err[512] = "", name[4096];
    serve_metrics metrics;
    serve_engine *engine = NULL;
    serve_http *http = NULL;
    serve_ctx ctx = {.model = m, .tok = tok, .model_id = model_name(a->dir, name, sizeof name),
                     .created = (long)time(NULL), .max_body = (size_t)a->max_body,
                     .has_attention = 1};
    if (serve_metrics_init(&metrics) || pthread_mutex_init(&ctx.id_mu, NULL))
        return cli_error(CLI_RUNTIME, "serve: cannot initialise");
    int rc = CLI_RUNTIME;
    ctx.metrics = &metrics;
    if (serve_engine_create(m, tok, a->parallel, a->queue, a->threads, &metrics, &engine, err,
                            sizeof err)) {
        cli_error(CLI_RUNTIME, "serve: %s", err);
        goto done;
    }
    ctx.engine = engine;
    if (serve_http_start(&ctx, a->host, a->port, &http, err, sizeof err)) {
        cli_error(CLI_RUNTIME, "serve: %s", err);
        goto done;
    }
    const slm_config *c = slm_model_config(m);
    int v6 = strchr(a->host, ':') != NULL;
    printf("slm serve: %s (%d layers, context %d) on http://%s%s%s:%d/ — %d slots, queue %d\n",
           ctx.model_id, c->n_layer, c->n_positions, v6 ? "[" : "", a->host, v6 ? "]" : "",
           serve_http_port(http), a->parallel, a->queue);
    fflush(stdout);
    int sig = 0;
    sigwait(sigs, &sig);
    /* A second Ctrl-C while draining ends the process at once. */
    pthread_sigmask(SIG_UNBLOCK, sigs, NULL);
    printf("slm serve: %s: finishing the requests in flight\n", sig == SIGINT ? "SIGINT" : "SIGTERM");
    fflush(stdout);
    serve_http_quiesce(http);
    serve_engine_drain(engine);
    /* Generation is over; give the connections time to send what is left. */
    serve_http_stop(http, 30);
    http = NULL;
    printf("slm serve: stopped\n");
    rc = CLI_OK;
done:
    serve_http_stop(http, 0);
    serve_engine_free(engine);
    pthread_mutex_destroy(&ctx.id_mu);
    serve_metrics_destroy(&metrics);
    return rc;
}

int cmd_serve(int argc, char **argv)
{
    serve_args a = {.host = "127.0.0.1", .port = 8080, .parallel = 4, .queue = 32,
                    .max_body = 1 << 20};
    const cli_option opts[] = {
        {"--model", "-m", OPT_STRING, &a.dir, 0, 0, NULL},
        {"--host", NULL, OPT_STRING, &a.host, 0, 0, NULL},
        {"--port", NULL, OPT_INT, &a.port, 0, 65535, NULL},
        {"--parallel", NULL, OPT_INT, &a.parallel, 1, 256, NULL},
        {"--queue", NULL, OPT_INT, &a.queue, 0, 100000, NULL},
        {"--max-body", NULL, OPT_INT, &a.max_body, 1024, 1 << 30, NULL},
        {"--threads", NULL, OPT_INT, &a.threads, 1, 4096, NULL},
    };
    char *pos[1];
    int n_pos;
    int rc = cli_parse_options("serve", argc, argv, opts, sizeof opts / sizeof *opts, pos, 0,
                               &n_pos);
    if (rc == -1) {
        fputs(help, stdout);
        return CLI_OK;
    }
    if (rc) return rc;
    if (!a.dir) return cli_error(CLI_USAGE, "serve: no model given (-m DIR)");
    /* Every thread started from here on inherits the blocked signals; this
     * thread alone takes SIGINT and SIGTERM, with sigwait. */
    sigset_t sigs;
    /* A shell starts background jobs with SIGINT ignored, and an ignored
     * signal never reaches sigwait: give both a handler (never run). */
    struct sigaction sa = {.sa_handler = on_signal};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN); /* a vanished client is an error return, not a signal */
    slm_model *m;
    slm_tokenizer *tok;
    if ((rc = cli_open_model("serve", a.dir, 1, &m, &tok))) return rc;
    rc = run(&a, m, tok, &sigs);
    slm_tokenizer_free(tok);
    slm_model_free(m);
    return rc;
}
