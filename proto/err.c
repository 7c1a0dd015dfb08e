#include "err.h"

const char *sz_strerror(int code)
{
    switch (code) {
#define SZ_ERR_TEXT(name, val, text)                                          \
    case val:                                                                 \
        return text;
        SZ_ERRORS(SZ_ERR_TEXT)
#undef SZ_ERR_TEXT
    }
    return "unknown error";
}

const char *sz_errname(int code)
{
    switch (code) {
#define SZ_ERR_NAME(name, val, text)                                          \
    case val:                                                                 \
        return #name;
        SZ_ERRORS(SZ_ERR_NAME)
#undef SZ_ERR_NAME
    }
    return "SZ_E?";
}
