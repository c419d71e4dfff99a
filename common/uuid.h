/* Random (version 4) UUIDs for request ids. */
#ifndef SS_UUID_H
#define SS_UUID_H

#include "err.h"

/* Writes a lower-case UUID (36 chars + NUL) into out[37]. Returns SS_ERR_IO
 * when the kernel's random source fails. */
enum ss_err uuid_v4(char out[37]) SS_MUSTCHECK;

#endif
