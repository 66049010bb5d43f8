/* The web page of slm serve (GET /): serve_page.html, embedded into the
 * binary as it is (no build step for the page, nothing fetched from a CDN),
 * so the server needs no file next to it. The Makefile makes this object
 * depend on the HTML file. The assembler computes the size, so C never
 * subtracts pointers to two different objects. */
#include "cli/serve.h"

#include <stdint.h>

__asm__(".section .rodata\n"
        ".balign 16\n"
        "serve_page_html:\n"
        ".incbin \"src/cli/serve_page.html\"\n"
        "serve_page_html_end:\n"
        ".byte 0\n"
        ".balign 8\n"
        "serve_page_html_size:\n"
        ".quad serve_page_html_end - serve_page_html\n"
        ".previous\n");
extern const char serve_page_html[];
extern const uint64_t serve_page_html_size;

const char *serve_page(size_t *len)
{
    *len = (size_t)serve_page_html_size;
    return serve_page_html;
}
