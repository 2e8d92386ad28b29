/* /init of the test OS: prints a marker with its kernel command line (so a test sees
 * exactly which package booted) and the TPM's PCRs 12-14 (so a test can check what
 * stboot measured), then powers off. */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <unistd.h>

/* TPM2_PCR_Read of one SHA-256 PCR; writes 64 hex chars to out, or "none". */
static void read_pcr(int tpm, int pcr, char *out) {
    unsigned char cmd[20] = {0x80, 0x01, 0, 0, 0, 20, 0, 0, 0x01, 0x7e, 0, 0, 0, 1, 0, 0x0b, 3, 0, 0, 0};
    unsigned char r[128];
    strcpy(out, "none");
    cmd[17 + pcr / 8] = 1 << (pcr % 8);
    if (tpm < 0 || write(tpm, cmd, sizeof cmd) != sizeof cmd) return;
    int n = read(tpm, r, sizeof r);
    if (n < 62 || r[6] || r[7] || r[8] || r[9]) return;
    for (int i = 0; i < 32; i++) sprintf(out + 2 * i, "%02x", r[30 + i]);
}

int main(void) {
    char buf[4096] = {0}, p12[80], p13[80], p14[80];
    mount("proc", "/proc", "proc", 0, 0);
    mount("devtmpfs", "/dev", "devtmpfs", 0, 0);
    int fd = open("/proc/cmdline", O_RDONLY);
    int n = fd >= 0 ? read(fd, buf, sizeof buf - 1) : 0;
    if (n > 0 && buf[n - 1] == '\n') buf[n - 1] = 0;
    int tpm = open("/dev/tpmrm0", O_RDWR);
    read_pcr(tpm, 12, p12);
    read_pcr(tpm, 13, p13);
    read_pcr(tpm, 14, p14);
    FILE *c = fopen("/dev/console", "w");
    if (!c) c = stdout;
    fprintf(c, "\nTEST-OS-PCRS pcr12=%s pcr13=%s pcr14=%s\n", p12, p13, p14);
    fprintf(c, "TEST-OS-BOOTED cmdline=[%s]\n", buf);
    fflush(c);
    sync();
    reboot(RB_POWER_OFF);
    return 0;
}
