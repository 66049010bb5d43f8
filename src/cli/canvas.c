/* The canvas front end and its SVG back end (see canvas.h). SVG is built in
 * memory as text and written in one atomic step. */
#include "cli/canvas.h"

#include "io/atomic_file.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct canvas {
    int kind, width, height;
    int failed;           /* an allocation failed: canvas_save reports it */
    char *svg;            /* SVG text so far                              */
    size_t len, cap;
    cairo_backend *cairo; /* PNG                                          */
};

int canvas_kind_of(const char *path)
{
    const char *dot = path ? strrchr(path, '.') : NULL;
    if (!dot || strchr(dot, '/')) return -1;
    if (!strcasecmp(dot, ".svg")) return CANVAS_SVG;
    if (!strcasecmp(dot, ".png")) return CANVAS_PNG;
    return -1;
}

static void svg_printf(canvas *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void svg_printf(canvas *c, const char *fmt, ...)
{
    if (c->failed) return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(c->svg + c->len, c->cap - c->len, fmt, ap);
        va_end(ap);
        if (n < 0) {
            c->failed = 1;
            return;
        }
        if ((size_t)n < c->cap - c->len) {
            c->len += (size_t)n;
            return;
        }
        size_t cap = c->cap * 2 + (size_t)n + 1;
        char *p = realloc(c->svg, cap);
        if (!p) {
            c->failed = 1;
            return;
        }
        c->svg = p;
        c->cap = cap;
    }
}

/* Text content and attribute values: the five XML specials escaped. */
static void svg_escaped(canvas *c, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '&': svg_printf(c, "&amp;"); break;
        case '<': svg_printf(c, "&lt;"); break;
        case '>': svg_printf(c, "&gt;"); break;
        case '"': svg_printf(c, "&quot;"); break;
        case '\'': svg_printf(c, "&apos;"); break;
        default: svg_printf(c, "%c", *s);
        }
    }
}

int canvas_create(int kind, int width, int height, canvas **out, char *err, size_t errlen)
{
    *out = NULL;
    if (width < 1 || height < 1 || width > 16384 || height > 16384) {
        snprintf(err, errlen, "a picture of %d × %d pixels is too large (16384 at most)", width,
                 height);
        return -1;
    }
    canvas *c = calloc(1, sizeof *c);
    if (!c) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    c->kind = kind;
    c->width = width;
    c->height = height;
    if (kind == CANVAS_PNG) {
        c->cairo = cairo_backend_create(width, height);
        if (!c->cairo) {
            free(c);
            snprintf(err, errlen, "cannot create a %d × %d image (out of memory?)", width, height);
            return -1;
        }
    } else {
        svg_printf(c,
                   "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                   "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
                   "viewBox=\"0 0 %d %d\" font-family=\"%s, monospace\">\n"
                   "<rect x=\"0\" y=\"0\" width=\"%d\" height=\"%d\" fill=\"#ffffff\"/>\n",
                   width, height, width, height, CANVAS_FONT, width, height);
    }
    *out = c;
    return 0;
}

void canvas_free(canvas *c)
{
    if (!c) return;
    cairo_backend_free(c->cairo);
    free(c->svg);
    free(c);
}

double canvas_text_width(const char *text, double size)
{
    size_t chars = 0;
    for (const unsigned char *p = (const unsigned char *)text; *p; p++)
        chars += (*p & 0xC0) != 0x80; /* count code points, not bytes */
    return (double)chars * CANVAS_CHAR_WIDTH * size;
}

void canvas_fill_rect(canvas *c, double x, double y, double w, double h, rgb fill)
{
    if (c->cairo) {
        cairo_backend_rect(c->cairo, x, y, w, h, fill, 0.0);
        return;
    }
    svg_printf(c, "<rect x=\"%g\" y=\"%g\" width=\"%g\" height=\"%g\" fill=\"#%02x%02x%02x\"/>\n",
               x, y, w, h, fill.r, fill.g, fill.b);
}

void canvas_stroke_rect(canvas *c, double x, double y, double w, double h, rgb color,
                        double line_width)
{
    if (c->cairo) {
        cairo_backend_rect(c->cairo, x, y, w, h, color, line_width);
        return;
    }
    svg_printf(c,
               "<rect x=\"%g\" y=\"%g\" width=\"%g\" height=\"%g\" fill=\"none\" "
               "stroke=\"#%02x%02x%02x\" stroke-width=\"%g\"/>\n",
               x, y, w, h, color.r, color.g, color.b, line_width);
}

void canvas_polyline(canvas *c, const double *x, const double *y, int n, rgb color,
                     double line_width, int dashed)
{
    if (n < 2) return;
    if (c->cairo) {
        cairo_backend_path(c->cairo, x, y, n, color, line_width, dashed);
        return;
    }
    svg_printf(c, "<polyline fill=\"none\" stroke=\"#%02x%02x%02x\" stroke-width=\"%g\"%s points=\"",
               color.r, color.g, color.b, line_width,
               dashed ? " stroke-dasharray=\"4 3\"" : "");
    for (int i = 0; i < n; i++) svg_printf(c, i ? " %.2f,%.2f" : "%.2f,%.2f", x[i], y[i]);
    svg_printf(c, "\"/>\n");
}

void canvas_line(canvas *c, double x0, double y0, double x1, double y1, rgb color,
                 double line_width, int dashed)
{
    double x[2] = {x0, x1}, y[2] = {y0, y1};
    canvas_polyline(c, x, y, 2, color, line_width, dashed);
}

void canvas_dot(canvas *c, double x, double y, double radius, rgb fill)
{
    if (c->cairo) {
        cairo_backend_dot(c->cairo, x, y, radius, fill);
        return;
    }
    svg_printf(c, "<circle cx=\"%.2f\" cy=\"%.2f\" r=\"%g\" fill=\"#%02x%02x%02x\"/>\n", x, y,
               radius, fill.r, fill.g, fill.b);
}

void canvas_text(canvas *c, double x, double y, const char *text, double size, rgb color,
                 int anchor, int vertical, int bold)
{
    if (c->cairo)
        return cairo_backend_text(c->cairo, x, y, text, size, color, anchor, vertical, bold);
    static const char *anchors[] = {"start", "middle", "end"};
    svg_printf(c, "<text x=\"%.2f\" y=\"%.2f\" font-size=\"%g\" fill=\"#%02x%02x%02x\"", x, y,
               size, color.r, color.g, color.b);
    if (anchor != ANCHOR_START) svg_printf(c, " text-anchor=\"%s\"", anchors[anchor]);
    if (vertical) svg_printf(c, " transform=\"rotate(-90 %.2f %.2f)\"", x, y);
    if (bold) svg_printf(c, " font-weight=\"bold\"");
    /* keep runs of spaces (token labels may be spaces) */
    svg_printf(c, " xml:space=\"preserve\">");
    svg_escaped(c, text);
    svg_printf(c, "</text>\n");
}

void canvas_group_begin(canvas *c, const char *attrs)
{
    if (c->kind == CANVAS_SVG) svg_printf(c, "<g %s>\n", attrs);
}

void canvas_group_end(canvas *c)
{
    if (c->kind == CANVAS_SVG) svg_printf(c, "</g>\n");
}

int canvas_save(canvas *c, const char *path, char *err, size_t errlen)
{
    if (c->kind == CANVAS_PNG) {
        unsigned char *png = NULL;
        size_t len = 0;
        if (cairo_backend_png(c->cairo, &png, &len, err, errlen)) return -1;
        int rc = atomic_write(path, png, len, err, errlen);
        free(png);
        return rc ? -1 : 0;
    }
    svg_printf(c, "</svg>\n");
    if (c->failed) {
        snprintf(err, errlen, "out of memory while drawing");
        return -1;
    }
    return atomic_write(path, c->svg, c->len, err, errlen) ? -1 : 0;
}
