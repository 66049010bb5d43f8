/* Colours of the figures: the viridis scale for values in [0, 1]
 * (perceptually uniform, readable in grey and by colour-blind readers) and a
 * palette for the lines of several runs. */
#ifndef SLM_CLI_COLORMAP_H
#define SLM_CLI_COLORMAP_H

#include "cli/canvas.h"

/* viridis(t) for t in [0, 1] (clamped): linear interpolation between
 * matplotlib's viridis at t = 0, 0.1, ..., 1 (#440154 ... #fde725), rounded
 * to the nearest 8-bit value. */
rgb colormap_viridis(double t);

/* The i-th line colour (matplotlib's tab10, cycled). */
rgb colormap_line(int i);

#define COLOR_TEXT ((rgb){0x22, 0x22, 0x22})
#define COLOR_MUTED ((rgb){0x88, 0x88, 0x88})
#define COLOR_GRID ((rgb){0xdd, 0xdd, 0xdd})
#define COLOR_FRAME ((rgb){0x55, 0x55, 0x55})

#endif
