/* /init of the test OS: prints a marker with its kernel command line, so a test
 * sees exactly which package booted, then powers off. */
#include <fcntl.h>
#include <stdio.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <unistd.h>

int main(void) {
    char buf[4096] = {0};
    mount("proc", "/proc", "proc", 0, 0);
    int fd = open("/proc/cmdline", O_RDONLY);
    int n = fd >= 0 ? read(fd, buf, sizeof buf - 1) : 0;
    if (n > 0 && buf[n - 1] == '\n') buf[n - 1] = 0;
    FILE *c = fopen("/dev/console", "w");
    if (!c) c = stdout;
    fprintf(c, "\nTEST-OS-BOOTED cmdline=[%s]\n", buf);
    fflush(c);
    sync();
    reboot(RB_POWER_OFF);
    return 0;
}
