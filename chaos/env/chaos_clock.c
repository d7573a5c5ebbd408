/* A wall-clock offset for one process, changed while it runs: what a clock fault does.
 *
 * Preloaded (LD_PRELOAD) into a process started with CHAOS_CLOCK_FILE naming an 8-byte file. The
 * file holds a signed 64-bit offset in nanoseconds (native byte order) that the harness rewrites
 * in place; it is mapped shared, so every read of the wall clock sees the offset of that moment.
 * The wall clock is CLOCK_REALTIME as read through clock_gettime, gettimeofday and time; the
 * monotonic clocks are left alone, as an NTP step leaves them. Without the variable, or with a
 * file that cannot be mapped, the process runs on the true clock.
 *
 * Why not libfaketime: Debian's 0.9.10 shifts CLOCK_MONOTONIC deadlines of clock_nanosleep even
 * with FAKETIME_DONT_FAKE_MONOTONIC, and Python 3.11's time.sleep then fails with EINVAL
 * (wolfcw/libfaketime#426).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static volatile const int64_t *offset_ns;
static int (*real_clock_gettime)(clockid_t, struct timespec *);

__attribute__((constructor)) static void chaos_clock_init(void) {
    real_clock_gettime = dlsym(RTLD_NEXT, "clock_gettime");
    const char *path = getenv("CHAOS_CLOCK_FILE");
    if (path == NULL) return;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return;
    void *mapped = mmap(NULL, sizeof(int64_t), PROT_READ, MAP_SHARED, fd, 0);
    close(fd);
    if (mapped != MAP_FAILED) offset_ns = mapped;
}

static int64_t current_offset(void) {
    return offset_ns == NULL ? 0 : __atomic_load_n(offset_ns, __ATOMIC_RELAXED);
}

static int is_wall_clock(clockid_t clock) {
    return clock == CLOCK_REALTIME || clock == CLOCK_REALTIME_COARSE;
}

static void shift(struct timespec *ts, int64_t by) {
    int64_t nanos = (int64_t)ts->tv_nsec + by % 1000000000LL;
    int64_t seconds = (int64_t)ts->tv_sec + by / 1000000000LL;
    if (nanos < 0) { nanos += 1000000000LL; seconds -= 1; }
    if (nanos >= 1000000000LL) { nanos -= 1000000000LL; seconds += 1; }
    ts->tv_sec = seconds;
    ts->tv_nsec = nanos;
}

int clock_gettime(clockid_t clock, struct timespec *ts) {
    if (real_clock_gettime == NULL) real_clock_gettime = dlsym(RTLD_NEXT, "clock_gettime");
    int result = real_clock_gettime(clock, ts);
    if (result == 0 && is_wall_clock(clock)) shift(ts, current_offset());
    return result;
}

int gettimeofday(struct timeval *restrict tv, void *restrict tz) {
    (void)tz;
    struct timespec now;
    int result = clock_gettime(CLOCK_REALTIME, &now);
    if (result == 0) {
        tv->tv_sec = now.tv_sec;
        tv->tv_usec = now.tv_nsec / 1000;
    }
    return result;
}

time_t time(time_t *out) {
    struct timespec now;
    if (clock_gettime(CLOCK_REALTIME, &now) != 0) return (time_t)-1;
    if (out != NULL) *out = now.tv_sec;
    return now.tv_sec;
}
