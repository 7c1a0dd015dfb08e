/*
 * sztest: helpers shared by the unit tests (test code only).
 */
#ifndef SZ_SZTEST_H
#define SZ_SZTEST_H

#include <ftw.h>
#include <stdio.h>
#include <sys/stat.h>

static int sztest_rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

/** sztest_rmrf(dir): Remove dir and everything below it (a test's mkdtemp dir). */
static inline void sztest_rmrf(const char *dir)
{
    nftw(dir, sztest_rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

#endif
