/* /init of the test OS: prints a marker with its kernel command line (so a test sees
 * exactly which package booted), the TPM's PCRs 12-14 (TPM2_PCR_Read), PCRs 8-15
 * read two ways (TPM2_PCR_Read, and sysfs as an OS reads them) and what stboot handed over in /stboot (the event
 * log in base64, the boot report), then powers off. With /bin/stmgr in its initramfs
 * (the attest package) it is also the machine a verifier challenges: it asks for a
 * nonce on the console (TEST-OS-NONCE?), runs `stmgr attest quote` with it and the
 * key file /etc/wg0.pub, and prints the evidence in base64 (TEST-OS-EVIDENCE). With
 * /etc/floor-confirm too (the TPM floor packages) it confirms a good boot instead:
 * `stmgr tpm floor raise` to the booted version (TEST-OS-FLOOR-STATUS). */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/wait.h>
#include <termios.h>
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

/* One sysfs PCR (/sys/class/tpm/tpm0/pcr-sha256/N): 64 hex chars, or "none". */
static void sysfs_pcr(int pcr, char *out) {
    char path[64];
    strcpy(out, "none");
    snprintf(path, sizeof path, "/sys/class/tpm/tpm0/pcr-sha256/%d", pcr);
    int fd = open(path, O_RDONLY);
    if (fd < 0) return;
    char v[80] = {0};
    int n = read(fd, v, 64);
    close(fd);
    if (n != 64) return;
    for (int i = 0; i < 64; i++) out[i] = (v[i] >= 'A' && v[i] <= 'F') ? v[i] + 32 : v[i];
    out[64] = 0;
}

/* The whole of a file (at most max bytes); its length, or -1. */
static int slurp(const char *path, unsigned char *b, int max) {
    int fd = open(path, O_RDONLY), n = 0, r;
    if (fd < 0) return -1;
    while (n < max && (r = read(fd, b + n, max - n)) > 0) n += r;
    close(fd);
    return n;
}

static void base64(FILE *c, const unsigned char *b, int n) {
    static const char t[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for (int i = 0; i < n; i += 3) {
        unsigned v = b[i] << 16 | (i + 1 < n ? b[i + 1] << 8 : 0) | (i + 2 < n ? b[i + 2] : 0);
        fputc(t[v >> 18 & 63], c);
        fputc(t[v >> 12 & 63], c);
        fputc(i + 1 < n ? t[v >> 6 & 63] : '=', c);
        fputc(i + 2 < n ? t[v & 63] : '=', c);
    }
}

static unsigned char file_buf[1 << 20];

/* /bin/stmgr with `argv`, its output on the console; its wait status. */
static int run_stmgr(FILE *c, char *argv[]) {
    fflush(c);
    pid_t pid = fork();
    if (pid == 0) {
        int out = open("/dev/console", O_WRONLY);
        if (out >= 0) {
            dup2(out, 1);
            dup2(out, 2);
        }
        execv("/bin/stmgr", argv);
        _exit(127);
    }
    int status = -1;
    if (pid > 0) waitpid(pid, &status, 0);
    return status;
}

/* The verifier's challenge: a nonce line from the console, the evidence back. */
static void attest(FILE *c) {
    char nonce[160];
    int n = 0;
    fprintf(c, "TEST-OS-NONCE?\n");
    fflush(c);
    tcdrain(fileno(c));
    int in = open("/dev/console", O_RDONLY);
    while (in >= 0 && n < (int)sizeof nonce - 1) {
        char ch;
        if (read(in, &ch, 1) != 1) break;
        if (ch == '\n' || ch == '\r') {
            if (n > 0) break;
            continue;
        }
        nonce[n++] = ch;
    }
    nonce[n] = 0;
    if (in >= 0) close(in);
    fprintf(c, "TEST-OS-NONCE %s\n", nonce);
    char *quote[] = {"stmgr", "attest", "quote", "-nonce", nonce, "-key", "/etc/wg0.pub", "-out", "/evidence.json", 0};
    fprintf(c, "TEST-OS-QUOTE-STATUS %d\n", run_stmgr(c, quote));
    int len = slurp("/evidence.json", file_buf, sizeof file_buf);
    if (len >= 0) {
        fprintf(c, "TEST-OS-EVIDENCE ");
        base64(c, file_buf, len);
        fprintf(c, "\n");
    }
    fflush(c);
}

/* The OS's confirmation of a good boot: the TPM floor rises to the booted version. */
static void confirm_floor(FILE *c) {
    char *raise[] = {"stmgr", "tpm", "floor", "raise", 0};
    fprintf(c, "TEST-OS-FLOOR-STATUS %d\n", run_stmgr(c, raise));
    fflush(c);
}

int main(void) {
    char buf[4096] = {0}, p12[80], p13[80], p14[80], v[80];
    mount("proc", "/proc", "proc", 0, 0);
    mount("devtmpfs", "/dev", "devtmpfs", 0, 0);
    /* only emergencies from the kernel from here on: its messages (a clocksource
       switch, the power-down) must not land in the middle of a TEST-OS line */
    int pk = open("/proc/sys/kernel/printk", O_WRONLY);
    if (pk >= 0) {
        if (write(pk, "1\n", 2) != 2) { /* keep going: the lines may be split */ }
        close(pk);
    }
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
    fprintf(c, "TEST-OS-PCRS-8-15");
    for (int p = 8; p <= 15; p++) {
        read_pcr(tpm, p, v);
        fprintf(c, " pcr%d=%s", p, v);
    }
    mount("sysfs", "/sys", "sysfs", 0, 0);
    fprintf(c, "\nTEST-OS-SYSFS-PCRS");
    for (int p = 8; p <= 15; p++) {
        sysfs_pcr(p, v);
        fprintf(c, " pcr%d=%s", p, v);
    }
    fprintf(c, "\n");
    int len = slurp("/stboot/eventlog.bin", file_buf, sizeof file_buf);
    if (len >= 0) {
        fprintf(c, "TEST-OS-EVENTLOG ");
        base64(c, file_buf, len);
        fprintf(c, "\n");
    }
    len = slurp("/stboot/firmware-eventlog.bin", file_buf, sizeof file_buf);
    if (len >= 0) fprintf(c, "TEST-OS-FIRMWARE-EVENTLOG %d bytes\n", len);
    len = slurp("/stboot/descriptor.json", file_buf, sizeof file_buf);
    if (len >= 0) {
        fprintf(c, "TEST-OS-DESCRIPTOR ");
        base64(c, file_buf, len);
        fprintf(c, "\n");
    }
    len = slurp("/stboot/report.json", file_buf, sizeof file_buf - 1);
    if (len >= 0) {
        file_buf[len] = 0;
        fprintf(c, "TEST-OS-REPORT-BEGIN\n%sTEST-OS-REPORT-END\n", file_buf);
    }
    /* what systemd-stub (or stboot, for a UKI package) leaves for systemd in the initrd */
    static const char *extra[] = {"tpm2-pcr-signature.json", "tpm2-pcr-public-key.pem"};
    for (int i = 0; i < 2; i++) {
        char p[64];
        snprintf(p, sizeof p, "/.extra/%s", extra[i]);
        len = slurp(p, file_buf, sizeof file_buf);
        if (len >= 0) {
            fprintf(c, "TEST-OS-EXTRA %s ", extra[i]);
            base64(c, file_buf, len);
            fprintf(c, "\n");
        }
    }
    if (access("/bin/stmgr", X_OK) == 0 && access("/etc/floor-confirm", F_OK) == 0)
        confirm_floor(c);
    else if (access("/bin/stmgr", X_OK) == 0)
        attest(c);
    fprintf(c, "TEST-OS-BOOTED cmdline=[%s]\n", buf);
    fflush(c);
    tcdrain(fileno(c)); /* all of it on the wire before the power goes */
    sync();
    reboot(RB_POWER_OFF);
    return 0;
}
