/* The web page of slm serve (GET /): serve_page.html, embedded into the
 * binary as it is (no build step for the page, nothing fetched from a CDN),
 * so the server needs no file next to it. The Makefile makes this object
 * depend on the HTML file. */
#include "cli/serve.h"

__asm__(".section .rodata\n"
        ".balign 16\n"
        "serve_page_html:\n"
        ".incbin \"src/cli/serve_page.html\"\n"
        "serve_page_html_end:\n"
        ".byte 0\n"
        ".previous\n");
extern const char serve_page_html[], serve_page_html_end[];

const char *serve_page(size_t *len)
{
    *len = (size_t)(serve_page_html_end - serve_page_html);
    return serve_page_html;
}
