/*
 * A small 2-D drawing surface with two back ends, so every figure is drawn
 * once and comes out as either file type:
 *   SVG  written as text here (canvas.c): <rect>, <line>, <polyline>,
 *        <text> elements a reader (and a test) can inspect;
 *   PNG  rasterised by Cairo (canvas_cairo.c), anti-aliased, with fonts from
 *        fontconfig.
 * Coordinates are pixels, y down. All text is one monospace font (DejaVu
 * Sans Mono), so the width of a label is known without asking a font
 * library and the layout is the same in both formats. Drawing calls never
 * fail: an allocation failure is remembered and reported by canvas_save.
 *
 * The drawing code lives in the CLI, not in libslm: it needs Cairo (and
 * through it fontconfig, freetype, pixman, libpng), which a library meant to
 * be embedded (and wrapped from Python) should not drag along.
 */
#ifndef SLM_CLI_CANVAS_H
#define SLM_CLI_CANVAS_H

#include <stddef.h>

typedef struct {
    unsigned char r, g, b;
} rgb;

enum { CANVAS_SVG = 0, CANVAS_PNG = 1 };
enum { ANCHOR_START = 0, ANCHOR_MIDDLE = 1, ANCHOR_END = 2 };

#define CANVAS_FONT "DejaVu Sans Mono"
/* Advance width of one character of CANVAS_FONT, per pixel of font size
 * (1233/2048 units in DejaVu Sans Mono). */
#define CANVAS_CHAR_WIDTH 0.602
#define CANVAS_BACKGROUND ((rgb){255, 255, 255})

typedef struct canvas canvas;

/* CANVAS_SVG for "*.svg", CANVAS_PNG for "*.png" (case-insensitive), else -1. */
int canvas_kind_of(const char *path);

/* A white canvas of width × height pixels (1 .. 16384 each). 0, or -1 with
 * a message. */
int canvas_create(int kind, int width, int height, canvas **out, char *err, size_t errlen);
void canvas_free(canvas *c);

/* Width in pixels of UTF-8 `text` at font size `size` (monospace). */
double canvas_text_width(const char *text, double size);

void canvas_fill_rect(canvas *c, double x, double y, double w, double h, rgb fill);
void canvas_stroke_rect(canvas *c, double x, double y, double w, double h, rgb color,
                        double line_width);
void canvas_line(canvas *c, double x0, double y0, double x1, double y1, rgb color,
                 double line_width, int dashed);
/* A connected line through n points (n >= 2). */
void canvas_polyline(canvas *c, const double *x, const double *y, int n, rgb color,
                     double line_width, int dashed);
void canvas_dot(canvas *c, double x, double y, double radius, rgb fill);
/* Text with its baseline at y, anchored at x; vertical = rotated 90° counter-
 * clockwise (reading upwards), anchored along the rotated baseline. `text`
 * must be valid UTF-8 without control characters (see token_label.h). */
void canvas_text(canvas *c, double x, double y, const char *text, double size, rgb color,
                 int anchor, int vertical, int bold);

/* Groups the following elements under <g ATTRS> in SVG (for readers and
 * tests: e.g. class="heatmap" data-x="..."); nothing in PNG. attrs is
 * written as given, so it must already be valid XML attribute text. */
void canvas_group_begin(canvas *c, const char *attrs);
void canvas_group_end(canvas *c);

/* Writes the picture to path atomically (a temporary file renamed over it:
 * never a half-written file). 0, or -1 with a message. */
int canvas_save(canvas *c, const char *path, char *err, size_t errlen);

/* ---- internal: the Cairo back end (canvas_cairo.c) ----------------------- */
typedef struct cairo_backend cairo_backend;
cairo_backend *cairo_backend_create(int width, int height);
void cairo_backend_free(cairo_backend *b);
void cairo_backend_rect(cairo_backend *b, double x, double y, double w, double h, rgb color,
                        double stroke_width);
void cairo_backend_path(cairo_backend *b, const double *x, const double *y, int n, rgb color,
                        double line_width, int dashed);
void cairo_backend_dot(cairo_backend *b, double x, double y, double radius, rgb fill);
void cairo_backend_text(cairo_backend *b, double x, double y, const char *text, double size,
                        rgb color, int anchor, int vertical, int bold);
/* The PNG file's bytes (malloc'd), or -1 with a message. */
int cairo_backend_png(cairo_backend *b, unsigned char **data, size_t *len, char *err,
                      size_t errlen);

#endif
