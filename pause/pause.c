/*
 * rkubelet's pause program: PID 1 of a pod's infra container.
 *
 * It holds the pod's namespaces open and does nothing else:
 *   - SIGTERM / SIGINT: exit 0 at once (PID 1 gets no default signal actions,
 *     so without a handler `docker stop` would wait the whole grace period);
 *   - SIGCHLD: reap every exited child (zombies re-parented to us when the pod
 *     shares its PID namespace);
 *   - otherwise sleep in pause() forever.
 * `--version` / `-v` prints the version and exits.
 *
 * Built statically by build.rs (gcc -Os -static -s) and embedded in rkubelet.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef PAUSE_VERSION
#define PAUSE_VERSION "unknown"
#endif

static void on_terminate(int sig) {
    (void)sig;
    _exit(0);
}

static void on_child(int sig) {
    int saved = errno;
    (void)sig;
    while (waitpid(-1, NULL, WNOHANG) > 0) {
    }
    errno = saved;
}

static int install(int sig, void (*handler)(int)) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = handler;
    sa.sa_flags = SA_RESTART | (sig == SIGCHLD ? SA_NOCLDSTOP : 0);
    sigemptyset(&sa.sa_mask);
    return sigaction(sig, &sa, NULL);
}

int main(int argc, char **argv) {
    if (argc > 1) {
        if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "-v") == 0) {
            printf("rkubelet-pause %s\n", PAUSE_VERSION);
            return 0;
        }
        fprintf(stderr, "usage: %s [--version]\n", argv[0]);
        return 2;
    }
    if (getpid() != 1) {
        fprintf(stderr, "pause: warning: not running as PID 1\n");
    }
    if (install(SIGINT, on_terminate) != 0 || install(SIGTERM, on_terminate) != 0 ||
        install(SIGCHLD, on_child) != 0) {
        perror("pause: sigaction");
        return 1;
    }
    for (;;) {
        pause();
    }
}
