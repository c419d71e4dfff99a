/* Names and classes of the stable error codes. */
#include "err.h"

#include <stdarg.h>
#include <stdio.h>

#define SS_ERR_NAME(e, name, cls) name,
static const char *const err_names[] = { SS_ERR_LIST(SS_ERR_NAME) };
#undef SS_ERR_NAME

#define SS_ERR_CLS(e, name, cls) cls,
static const enum ss_err_class err_classes[] = { SS_ERR_LIST(SS_ERR_CLS) };
#undef SS_ERR_CLS

const char *ss_err_name(enum ss_err code)
{
        if ((unsigned)code >= SS_ERR__COUNT)
                return "unknown";
        return err_names[code];
}

enum ss_err_class ss_err_class(enum ss_err code)
{
        if ((unsigned)code >= SS_ERR__COUNT)
                return SS_CLASS_REQUEST;
        return err_classes[code];
}

enum ss_err ss_error_set(struct ss_error *err, enum ss_err code,
                         const char *fmt, ...)
{
        if (err == NULL)
                return code;
        err->code = code;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
        va_end(ap);
        return code;
}

void ss_error_clear(struct ss_error *err)
{
        if (err == NULL)
                return;
        err->code = SS_OK;
        err->msg[0] = '\0';
}
