/* The PNG back end of the canvas: Cairo's image surface (RGB24, anti-aliased),
 * its toy text API with CANVAS_FONT from fontconfig, and its PNG writer
 * streaming into memory so the file itself is written atomically. */
#include "cli/canvas.h"

#include <cairo.h>
#include <fontconfig/fontconfig.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct cairo_backend {
    cairo_surface_t *surface;
    cairo_t *cr;
};

static void set_color(cairo_t *cr, rgb c)
{
    cairo_set_source_rgb(cr, c.r / 255.0, c.g / 255.0, c.b / 255.0);
}

cairo_backend *cairo_backend_create(int width, int height)
{
    cairo_backend *b = calloc(1, sizeof *b);
    if (!b) return NULL;
    b->surface = cairo_image_surface_create(CAIRO_FORMAT_RGB24, width, height);
    if (cairo_surface_status(b->surface) != CAIRO_STATUS_SUCCESS) {
        cairo_surface_destroy(b->surface);
        free(b);
        return NULL;
    }
    b->cr = cairo_create(b->surface);
    set_color(b->cr, CANVAS_BACKGROUND);
    cairo_paint(b->cr);
    return b;
}

void cairo_backend_free(cairo_backend *b)
{
    if (!b) return;
    cairo_destroy(b->cr);
    cairo_surface_destroy(b->surface);
    free(b);
    /* Cairo and fontconfig keep font caches for the life of the process; a
     * command draws one picture, so hand them back now (what both libraries
     * provide for leak checkers: make test runs the CLI under LeakSanitizer).
     * No Cairo object is alive at this point. */
    cairo_debug_reset_static_data();
    FcFini();
}

void cairo_backend_rect(cairo_backend *b, double x, double y, double w, double h, rgb color,
                        double stroke_width)
{
    set_color(b->cr, color);
    cairo_rectangle(b->cr, x, y, w, h);
    if (stroke_width > 0.0) {
        cairo_set_line_width(b->cr, stroke_width);
        cairo_stroke(b->cr);
    } else {
        cairo_fill(b->cr);
    }
}

void cairo_backend_path(cairo_backend *b, const double *x, const double *y, int n, rgb color,
                        double line_width, int dashed)
{
    static const double dash[2] = {4.0, 3.0};
    set_color(b->cr, color);
    cairo_set_line_width(b->cr, line_width);
    cairo_set_line_join(b->cr, CAIRO_LINE_JOIN_ROUND);
    cairo_set_dash(b->cr, dash, dashed ? 2 : 0, 0.0);
    cairo_move_to(b->cr, x[0], y[0]);
    for (int i = 1; i < n; i++) cairo_line_to(b->cr, x[i], y[i]);
    cairo_stroke(b->cr);
    cairo_set_dash(b->cr, NULL, 0, 0.0);
}

void cairo_backend_dot(cairo_backend *b, double x, double y, double radius, rgb fill)
{
    set_color(b->cr, fill);
    cairo_new_sub_path(b->cr);
    cairo_arc(b->cr, x, y, radius, 0.0, 6.283185307179586);
    cairo_fill(b->cr);
}

void cairo_backend_text(cairo_backend *b, double x, double y, const char *text, double size,
                        rgb color, int anchor, int vertical, int bold)
{
    cairo_t *cr = b->cr;
    cairo_save(cr);
    cairo_select_font_face(cr, CANVAS_FONT, CAIRO_FONT_SLANT_NORMAL,
                           bold ? CAIRO_FONT_WEIGHT_BOLD : CAIRO_FONT_WEIGHT_NORMAL);
    cairo_set_font_size(cr, size);
    cairo_text_extents_t ext;
    cairo_text_extents(cr, text, &ext);
    double shift = anchor == ANCHOR_MIDDLE ? ext.x_advance / 2 : anchor == ANCHOR_END ? ext.x_advance : 0.0;
    cairo_translate(cr, x, y);
    if (vertical) cairo_rotate(cr, -1.5707963267948966);
    cairo_move_to(cr, -shift, 0.0);
    set_color(cr, color);
    cairo_show_text(cr, text);
    cairo_restore(cr);
}

typedef struct {
    unsigned char *data;
    size_t len, cap;
} membuf;

static cairo_status_t to_memory(void *closure, const unsigned char *data, unsigned int n)
{
    membuf *m = closure;
    if (m->len + n > m->cap) {
        size_t cap = (m->cap + n) * 2;
        unsigned char *p = realloc(m->data, cap);
        if (!p) return CAIRO_STATUS_NO_MEMORY;
        m->data = p;
        m->cap = cap;
    }
    memcpy(m->data + m->len, data, n);
    m->len += n;
    return CAIRO_STATUS_SUCCESS;
}

int cairo_backend_png(cairo_backend *b, unsigned char **data, size_t *len, char *err,
                      size_t errlen)
{
    membuf m = {NULL, 0, 0};
    cairo_surface_flush(b->surface);
    cairo_status_t st = cairo_status(b->cr);
    if (st == CAIRO_STATUS_SUCCESS) st = cairo_surface_write_to_png_stream(b->surface, to_memory, &m);
    if (st != CAIRO_STATUS_SUCCESS) {
        free(m.data);
        snprintf(err, errlen, "drawing the PNG: %s", cairo_status_to_string(st));
        return -1;
    }
    *data = m.data;
    *len = m.len;
    return 0;
}
