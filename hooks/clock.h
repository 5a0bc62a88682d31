/* clock.h - the two clocks ngscale needs: monotonic seconds for intervals, and
 * absolute CLOCK_REALTIME deadlines for pthread_cond_timedwait. */
#ifndef NGS_HOOKS_CLOCK_H
#define NGS_HOOKS_CLOCK_H

#include <time.h>

static inline double ngs_now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static inline struct timespec ngs_deadline_ms(int ms)
{
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    t.tv_sec += ms / 1000;
    t.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (t.tv_nsec >= 1000000000L) {
        t.tv_sec++;
        t.tv_nsec -= 1000000000L;
    }
    return t;
}

#endif
