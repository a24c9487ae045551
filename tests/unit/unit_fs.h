/* unit_fs.h - files for unit tests: each test works in a temporary folder
 * of its own and removes it whole afterwards. */
#ifndef BB_UNIT_FS_H
#define BB_UNIT_FS_H

#include <dirent.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Removes dir and everything in it (no symbolic link is followed). */
static inline void remove_tree(const char *dir)
{
    DIR *dh = opendir(dir);
    if (!dh) return;
    struct dirent *de;
    while ((de = readdir(dh))) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) continue;
        char p[512];
        snprintf(p, sizeof p, "%s/%s", dir, de->d_name);
        struct stat st;
        if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode)) remove_tree(p);
        else unlink(p);
    }
    closedir(dh);
    rmdir(dir);
}

#endif
