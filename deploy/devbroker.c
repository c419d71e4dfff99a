/* stocksync-devbroker: hosts librdkafka's in-memory mock cluster as a
 * Kafka-protocol broker on 127.0.0.1 for other processes (development and
 * tests), with topics from the command line or a control FIFO. */
#include <librdkafka/rdkafka.h>
/* rdkafka_mock.h needs rdkafka.h first. */
#include <librdkafka/rdkafka_mock.h>

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../common/err.h"
#include "../common/log.h"

#define MAX_BROKERS    32
#define MAX_PARTITIONS 10000
#define MAX_TOPIC_LEN  249 /* Kafka's own limit on topic names */
#define CONTROL_LINE   512
#define POLL_MS        200

struct topic_arg {
        char *name; /* owned */
        int partitions;
};

struct opts {
        int brokers;
        struct topic_arg *topics; /* owned */
        size_t ntopics;
        const char *bootstrap_file; /* borrowed from argv, may be NULL */
        const char *control;        /* borrowed from argv, may be NULL */
        const char *pid_file;       /* borrowed from argv, may be NULL */
};

/* The control FIFO and the partial line read from it so far. */
struct control {
        const char *path; /* borrowed */
        int rfd;
        int wfd;       /* our own writer, so the reader never sees EOF */
        bool created;  /* we made the FIFO, so we remove it */
        bool skipping; /* dropping the rest of an over-long line */
        size_t len;
        char line[CONTROL_LINE];
};

static volatile sig_atomic_t stop_signal;

static void usage(FILE *out)
{
        fputs("usage: stocksync-devbroker [--brokers N] "
              "[--topic NAME:PARTITIONS]...\n"
              "         [--bootstrap-file F] [--control FIFO] "
              "[--pid-file F]\n"
              "\n"
              "Hosts librdkafka's mock cluster on 127.0.0.1 (random ports,\n"
              "memory only) and prints its bootstrap list on stdout.\n"
              "\n"
              "  --brokers N        brokers in the cluster (default 3)\n"
              "  --topic NAME:P     create a topic with P partitions "
              "(repeatable)\n"
              "  --bootstrap-file F write the bootstrap list to F "
              "(atomically)\n"
              "  --control FIFO     read commands from FIFO, one per line "
              "(made if missing):\n"
              "                       topic NAME PARTITIONS\n"
              "                       down BROKER_ID | up BROKER_ID\n"
              "                       rtt BROKER_ID MS\n"
              "                       leader TOPIC PARTITION BROKER_ID\n"
              "                       err API_KEY ERROR_CODE [COUNT]\n"
              "  --pid-file F       write our PID to F (atomically)\n"
              "\n"
              "Logs go to stderr (STOCKSYNC_LOG_LEVEL sets the level). "
              "SIGTERM or SIGINT\nstops it.\n",
              out);
}

/* Parses a whole decimal number in [lo, hi]. */
static bool parse_long(const char *s, long lo, long hi, long *out)
{
        if (s == NULL || *s == '\0')
                return false;
        char *end;
        errno = 0;
        long v = strtol(s, &end, 10);
        if (errno != 0 || *end != '\0' || v < lo || v > hi)
                return false;
        *out = v;
        return true;
}

static bool topic_name_ok(const char *name, size_t len)
{
        if (len == 0 || len > MAX_TOPIC_LEN)
                return false;
        for (size_t i = 0; i < len; i++) {
                char c = name[i];
                bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                          (c >= '0' && c <= '9') || c == '.' || c == '_' ||
                          c == '-';
                if (!ok)
                        return false;
        }
        return true;
}

/* NAME:PARTITIONS; fills out with a new name, free with free(). */
static enum ss_err
parse_topic(const char *arg, struct topic_arg *out, struct ss_error *err)
{
        const char *colon = strrchr(arg, ':');
        long parts;

        if (colon == NULL || !parse_long(colon + 1, 1, MAX_PARTITIONS, &parts))
                return ss_error_set(err, SS_ERR_CONFIG,
                                    "--topic %s: want NAME:PARTITIONS with "
                                    "1..%d partitions",
                                    arg, MAX_PARTITIONS);
        if (!topic_name_ok(arg, (size_t)(colon - arg)))
                return ss_error_set(err, SS_ERR_CONFIG,
                                    "--topic %s: bad topic name", arg);
        out->name = strndup(arg, (size_t)(colon - arg));
        if (out->name == NULL)
                return ss_error_set(err, SS_ERR_NOMEM, "out of memory");
        out->partitions = (int)parts;
        return SS_OK;
}

static enum ss_err
add_topic(struct opts *o, const char *arg, struct ss_error *err)
{
        struct topic_arg t;
        enum ss_err rc = parse_topic(arg, &t, err);
        if (rc != SS_OK)
                return rc;

        struct topic_arg *v =
                realloc(o->topics, (o->ntopics + 1) * sizeof(*o->topics));
        if (v == NULL) {
                free(t.name);
                return ss_error_set(err, SS_ERR_NOMEM, "out of memory");
        }
        o->topics = v;
        o->topics[o->ntopics++] = t;
        return SS_OK;
}

/* Returns SS_OK, or SS_ERR_CONFIG with a message. --help sets *help. */
static enum ss_err parse_opts(
        int argc, char **argv, struct opts *o, bool *help, struct ss_error *err)
{
        static const struct option longopts[] = {
                { "brokers", required_argument, NULL, 'b' },
                { "topic", required_argument, NULL, 't' },
                { "bootstrap-file", required_argument, NULL, 'f' },
                { "control", required_argument, NULL, 'c' },
                { "pid-file", required_argument, NULL, 'p' },
                { "help", no_argument, NULL, 'h' },
                { NULL, 0, NULL, 0 },
        };
        long n;
        int c;

        *help = false;
        o->brokers = 3;
        opterr = 0;
        while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
                enum ss_err rc = SS_OK;
                switch (c) {
                case 'b':
                        if (!parse_long(optarg, 1, MAX_BROKERS, &n))
                                return ss_error_set(err, SS_ERR_CONFIG,
                                                    "--brokers %s: want "
                                                    "1..%d",
                                                    optarg, MAX_BROKERS);
                        o->brokers = (int)n;
                        break;
                case 't':
                        rc = add_topic(o, optarg, err);
                        break;
                case 'f':
                        o->bootstrap_file = optarg;
                        break;
                case 'c':
                        o->control = optarg;
                        break;
                case 'p':
                        o->pid_file = optarg;
                        break;
                case 'h':
                        *help = true;
                        return SS_OK;
                default:
                        return ss_error_set(err, SS_ERR_CONFIG,
                                            "unknown or incomplete option "
                                            "%s",
                                            argv[optind - 1]);
                }
                if (rc != SS_OK)
                        return rc;
        }
        if (optind < argc)
                return ss_error_set(err, SS_ERR_CONFIG,
                                    "unexpected argument %s", argv[optind]);
        return SS_OK;
}

/* write() until all of buf is out; false with errno set on failure. */
static bool write_all(int fd, const char *buf, size_t len)
{
        while (len > 0) {
                ssize_t w = write(fd, buf, len);
                if (w < 0 && errno == EINTR)
                        continue;
                if (w < 0)
                        return false;
                buf += w;
                len -= (size_t)w;
        }
        return true;
}

/* Writes contents to path through a temporary file and rename(), so a
 * reader sees either nothing or the whole text. */
static enum ss_err
write_file_atomic(const char *path, const char *contents, struct ss_error *err)
{
        char tmp[PATH_MAX];
        int n = snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid());
        if (n < 0 || (size_t)n >= sizeof(tmp))
                return ss_error_set(err, SS_ERR_IO, "%s: path too long", path);

        int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0)
                return ss_error_set(err, SS_ERR_UNWRITABLE, "%s: %s", tmp,
                                    strerror(errno));
        bool ok = write_all(fd, contents, strlen(contents));
        int saved = errno;
        if (close(fd) != 0 && ok) {
                ok = false;
                saved = errno;
        }
        if (ok && rename(tmp, path) != 0) {
                ok = false;
                saved = errno;
        }
        if (!ok) {
                unlink(tmp);
                return ss_error_set(err, SS_ERR_UNWRITABLE, "%s: %s", path,
                                    strerror(saved));
        }
        return SS_OK;
}

/* Removes path only while it still holds what we wrote (plus a newline
 * when newline is set): a successor that started early must not lose its
 * file to our shutdown. */
static void unlink_if_ours(const char *path, const char *contents, bool newline)
{
        char have[4096];
        FILE *f = fopen(path, "r");
        if (f == NULL)
                return;
        size_t n = fread(have, 1, sizeof(have) - 1, f);
        fclose(f);
        have[n] = '\0';
        if (newline && n > 0 && have[n - 1] == '\n')
                have[n - 1] = '\0';
        if (strcmp(have, contents) == 0)
                unlink(path);
}

/* Writes the PID file, then the bootstrap file (its appearance tells
 * scripts we are ready), then prints the bootstrap list. */
static enum ss_err announce(const struct opts *o,
                            const char *boot,
                            const char *pidtext,
                            struct ss_error *err)
{
        char line[4096];
        snprintf(line, sizeof(line), "%s\n", boot);
        if (o->pid_file != NULL &&
            write_file_atomic(o->pid_file, pidtext, err) != SS_OK)
                return err->code;
        if (o->bootstrap_file != NULL &&
            write_file_atomic(o->bootstrap_file, line, err) != SS_OK)
                return err->code;
        fputs(line, stdout);
        fflush(stdout);

        struct log_line l;
        log_begin(&l, LOG_INFO, "started");
        log_kv(&l, "version", SS_VERSION);
        log_kv(&l, "librdkafka", rd_kafka_version_str());
        log_kvi(&l, "brokers", o->brokers);
        log_kvi(&l, "topics", (long long)o->ntopics);
        log_kv(&l, "bootstrap", boot);
        log_kv(&l, "control", o->control ? o->control : "");
        log_kvi(&l, "pid", (long long)getpid());
        log_end(&l);
        return SS_OK;
}

static void on_signal(int sig)
{
        stop_signal = sig;
}

/* Handlers without SA_RESTART, so poll() returns at once with EINTR. */
static void install_signals(void)
{
        struct sigaction sa;
        memset(&sa, 0, sizeof(sa));
        sa.sa_handler = on_signal;
        sigemptyset(&sa.sa_mask);
        sigaction(SIGTERM, &sa, NULL);
        sigaction(SIGINT, &sa, NULL);
        signal(SIGPIPE, SIG_IGN);
}

/* librdkafka calls this from its own threads; log_end() writes each line
 * with one call, so lines stay whole. */
static void rdkafka_log_cb(const rd_kafka_t *rk,
                           int level,
                           const char *fac,
                           const char *buf)
{
        (void)rk;
        enum log_level lvl = level <= 3   ? LOG_ERROR
                             : level == 4 ? LOG_WARN
                             : level <= 6 ? LOG_INFO
                                          : LOG_DEBUG;
        /* The host handle never connects anywhere, it only owns the mock,
         * so the missing-bootstrap warning it gets at start is noise. */
        if (strcmp(fac, "CONFWARN") == 0 &&
            strstr(buf, "bootstrap.servers") != NULL)
                lvl = LOG_DEBUG;

        struct log_line l;
        log_begin(&l, lvl, "rdkafka");
        log_kv(&l, "fac", fac);
        log_kv(&l, "msg", buf);
        log_end(&l);
}

/* Creates the handle that hosts the mock and the mock itself. On failure
 * nothing is left allocated. */
static enum ss_err host_new(int brokers,
                            rd_kafka_t **rkp,
                            rd_kafka_mock_cluster_t **mcp,
                            struct ss_error *err)
{
        char errstr[512];
        rd_kafka_conf_t *conf = rd_kafka_conf_new();
        rd_kafka_conf_set_log_cb(conf, rdkafka_log_cb);

        rd_kafka_t *rk =
                rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
        if (rk == NULL) {
                rd_kafka_conf_destroy(conf);
                return ss_error_set(err, SS_ERR_KAFKA, "rd_kafka_new: %s",
                                    errstr);
        }
        conf = NULL; /* owned by rk now */

        rd_kafka_mock_cluster_t *mc = rd_kafka_mock_cluster_new(rk, brokers);
        if (mc == NULL) {
                rd_kafka_destroy(rk);
                return ss_error_set(err, SS_ERR_KAFKA,
                                    "cannot create the mock cluster");
        }
        *rkp = rk;
        *mcp = mc;
        return SS_OK;
}

static enum ss_err create_topic(rd_kafka_mock_cluster_t *mc,
                                int brokers,
                                const char *name,
                                int partitions,
                                struct ss_error *err)
{
        /* The mock puts every broker in the replica list whatever this
         * says; Kafka's usual factor keeps the call honest. */
        int rf = brokers < 3 ? brokers : 3;
        rd_kafka_resp_err_t kerr =
                rd_kafka_mock_topic_create(mc, name, partitions, rf);
        if (kerr != RD_KAFKA_RESP_ERR_NO_ERROR)
                return ss_error_set(err, SS_ERR_KAFKA, "topic %s: %s", name,
                                    rd_kafka_err2str(kerr));

        struct log_line l;
        log_begin(&l, LOG_INFO, "topic_created");
        log_kv(&l, "topic", name);
        log_kvi(&l, "partitions", partitions);
        log_end(&l);
        return SS_OK;
}

static enum ss_err
control_open(struct control *ctl, const char *path, struct ss_error *err)
{
        struct stat st;

        ctl->path = path;
        ctl->rfd = ctl->wfd = -1;
        if (stat(path, &st) != 0) {
                if (errno != ENOENT || mkfifo(path, 0600) != 0)
                        return ss_error_set(err, SS_ERR_IO, "%s: %s", path,
                                            strerror(errno));
                ctl->created = true;
        } else if (!S_ISFIFO(st.st_mode)) {
                return ss_error_set(err, SS_ERR_CONFIG,
                                    "%s exists and is not a FIFO", path);
        }

        /* Non-blocking read end first (opening it alone would wait for a
         * writer), then a writer of our own: without it every writer that
         * closes would leave the read end at EOF, polling readable. */
        ctl->rfd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
        if (ctl->rfd >= 0)
                ctl->wfd = open(path, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
        if (ctl->rfd < 0 || ctl->wfd < 0)
                return ss_error_set(err, SS_ERR_IO, "%s: %s", path,
                                    strerror(errno));
        return SS_OK;
}

static void control_close(struct control *ctl)
{
        if (ctl->wfd >= 0)
                close(ctl->wfd);
        if (ctl->rfd >= 0)
                close(ctl->rfd);
        if (ctl->created)
                unlink(ctl->path);
        ctl->rfd = ctl->wfd = -1;
}

static enum ss_err
cmd_broker_id(const char *s, int brokers, int32_t *id, struct ss_error *err)
{
        long v;
        if (!parse_long(s, 1, brokers, &v))
                return ss_error_set(err, SS_ERR_BAD_FIELD,
                                    "broker id %s: want 1..%d",
                                    s ? s : "(missing)", brokers);
        *id = (int32_t)v;
        return SS_OK;
}

/* err API_KEY ERROR_CODE [COUNT]: the next COUNT requests of that API
 * fail with that error (-195 drops the connection). */
static enum ss_err cmd_err(rd_kafka_mock_cluster_t *mc,
                           char **argv,
                           int argc,
                           struct ss_error *err)
{
        long key, code, cnt = 1;
        if (argc < 3 || argc > 4 || !parse_long(argv[1], 0, 32767, &key) ||
            !parse_long(argv[2], -200, 32767, &code) ||
            (argc == 4 && !parse_long(argv[3], 1, 1000, &cnt)))
                return ss_error_set(err, SS_ERR_BAD_FIELD,
                                    "want: err API_KEY ERROR_CODE [COUNT "
                                    "1..1000]");

        rd_kafka_resp_err_t *codes = calloc((size_t)cnt, sizeof(*codes));
        if (codes == NULL)
                return ss_error_set(err, SS_ERR_NOMEM, "out of memory");
        for (long i = 0; i < cnt; i++)
                codes[i] = (rd_kafka_resp_err_t)code;
        rd_kafka_mock_push_request_errors_array(mc, (int16_t)key, (size_t)cnt,
                                                codes);
        free(codes);
        return SS_OK;
}

/* Runs one command already split into words. */
static enum ss_err control_exec(rd_kafka_mock_cluster_t *mc,
                                int brokers,
                                char **argv,
                                int argc,
                                struct ss_error *err)
{
        const char *cmd = argv[0];
        rd_kafka_resp_err_t kerr = RD_KAFKA_RESP_ERR_NO_ERROR;
        int32_t id = 0;
        long n = 0, ms = 0;

        if (strcmp(cmd, "topic") == 0) {
                if (argc != 3 || !topic_name_ok(argv[1], strlen(argv[1])) ||
                    !parse_long(argv[2], 1, MAX_PARTITIONS, &n))
                        return ss_error_set(err, SS_ERR_BAD_FIELD,
                                            "want: topic NAME 1..%d",
                                            MAX_PARTITIONS);
                return create_topic(mc, brokers, argv[1], (int)n, err);
        }
        if (strcmp(cmd, "down") == 0 || strcmp(cmd, "up") == 0) {
                if (argc != 2 ||
                    cmd_broker_id(argv[1], brokers, &id, err) != SS_OK)
                        return ss_error_set(err, SS_ERR_BAD_FIELD,
                                            "want: %s 1..%d", cmd, brokers);
                kerr = cmd[0] == 'd' ? rd_kafka_mock_broker_set_down(mc, id)
                                     : rd_kafka_mock_broker_set_up(mc, id);
        } else if (strcmp(cmd, "rtt") == 0) {
                if (argc != 3 ||
                    cmd_broker_id(argv[1], brokers, &id, err) != SS_OK ||
                    !parse_long(argv[2], 0, 600000, &ms))
                        return ss_error_set(err, SS_ERR_BAD_FIELD,
                                            "want: rtt 1..%d MS", brokers);
                kerr = rd_kafka_mock_broker_set_rtt(mc, id, (int)ms);
        } else if (strcmp(cmd, "leader") == 0) {
                if (argc != 4 || !parse_long(argv[2], 0, MAX_PARTITIONS, &n) ||
                    cmd_broker_id(argv[3], brokers, &id, err) != SS_OK)
                        return ss_error_set(err, SS_ERR_BAD_FIELD,
                                            "want: leader TOPIC PARTITION "
                                            "1..%d",
                                            brokers);
                kerr = rd_kafka_mock_partition_set_leader(mc, argv[1],
                                                          (int32_t)n, id);
        } else if (strcmp(cmd, "err") == 0) {
                return cmd_err(mc, argv, argc, err);
        } else {
                return ss_error_set(err, SS_ERR_UNKNOWN_ACTION,
                                    "unknown command %s", cmd);
        }

        if (kerr != RD_KAFKA_RESP_ERR_NO_ERROR)
                return ss_error_set(err, SS_ERR_KAFKA, "%s: %s", cmd,
                                    rd_kafka_err2str(kerr));
        return SS_OK;
}

/* Splits one line into words and runs it; every outcome is logged, and
 * nothing here stops the broker. */
static void control_line(rd_kafka_mock_cluster_t *mc, int brokers, char *line)
{
        char *argv[8];
        int argc = 0;
        char *save = NULL;
        struct ss_error err = { SS_OK, "" };

        for (char *w = strtok_r(line, " \t\r", &save); w != NULL && argc < 8;
             w = strtok_r(NULL, " \t\r", &save))
                argv[argc++] = w;
        if (argc == 0 || argv[0][0] == '#')
                return;

        /* Keep a copy of the command for the log: strtok_r cut it up. */
        char text[CONTROL_LINE];
        size_t off = 0;
        for (int i = 0; i < argc && off < sizeof(text); i++)
                off += (size_t)snprintf(text + off, sizeof(text) - off, "%s%s",
                                        i ? " " : "", argv[i]);

        struct log_line l;
        if (control_exec(mc, brokers, argv, argc, &err) == SS_OK) {
                log_begin(&l, LOG_INFO, "control_done");
                log_kv(&l, "cmd", text);
        } else {
                log_begin(&l, LOG_ERROR, "control_failed");
                log_kv(&l, "cmd", text);
                log_err(&l, &err);
        }
        log_end(&l);
}

/* Reads what the FIFO holds (raw read(), no stdio buffer, so commands
 * written together are all seen now) and runs each complete line. */
static void
control_read(struct control *ctl, rd_kafka_mock_cluster_t *mc, int brokers)
{
        char chunk[1024];
        ssize_t n;

        while ((n = read(ctl->rfd, chunk, sizeof(chunk))) > 0) {
                for (ssize_t i = 0; i < n; i++) {
                        char c = chunk[i];
                        if (c == '\n') {
                                ctl->line[ctl->len] = '\0';
                                if (!ctl->skipping)
                                        control_line(mc, brokers, ctl->line);
                                ctl->len = 0;
                                ctl->skipping = false;
                        } else if (ctl->skipping) {
                                continue;
                        } else if (ctl->len + 1 >= sizeof(ctl->line)) {
                                log_msg(LOG_ERROR, "control_failed",
                                        "code=bad_field msg=\"line longer "
                                        "than %d bytes, ignored\"",
                                        CONTROL_LINE - 1);
                                ctl->skipping = true;
                        } else {
                                ctl->line[ctl->len++] = c;
                        }
                }
        }
}

/* Serves until a signal arrives. */
static void serve(struct control *ctl, rd_kafka_mock_cluster_t *mc, int brokers)
{
        while (!stop_signal) {
                struct pollfd pfd = { ctl ? ctl->rfd : -1, POLLIN, 0 };
                int r = poll(&pfd, 1, POLL_MS);
                if (r > 0 && ctl != NULL && (pfd.revents & POLLIN))
                        control_read(ctl, mc, brokers);
        }
}

static void log_fatal(const struct ss_error *err)
{
        struct log_line l;
        log_begin(&l, LOG_ERROR, "fatal");
        log_err(&l, err);
        log_end(&l);
}

/* Blocks the stop signals while librdkafka starts its threads, so they
 * inherit the mask and only this thread ever runs the handler. */
static void block_stop_signals(int how)
{
        sigset_t set;
        sigemptyset(&set);
        sigaddset(&set, SIGTERM);
        sigaddset(&set, SIGINT);
        pthread_sigmask(how, &set, NULL);
}

int main(int argc, char **argv)
{
        struct opts o = { 0 };
        struct ss_error err = { SS_OK, "" };
        struct control ctl = { .rfd = -1, .wfd = -1 };
        bool have_ctl = false;
        rd_kafka_t *rk = NULL;
        rd_kafka_mock_cluster_t *mc = NULL;
        char *boot = NULL;
        char pidtext[32] = "";
        bool help;
        int rc = 1;

        enum log_level level = LOG_INFO;
        const char *lv = getenv("STOCKSYNC_LOG_LEVEL");
        if (lv != NULL && !log_level_parse(lv, &level))
                level = LOG_INFO;
        log_init("devbroker", level);

        if (parse_opts(argc, argv, &o, &help, &err) != SS_OK) {
                log_fatal(&err);
                fputs("stocksync-devbroker --help lists the options\n", stderr);
                rc = 2;
                goto out;
        }
        if (help) {
                usage(stdout);
                rc = 0;
                goto out;
        }

        install_signals();
        block_stop_signals(SIG_BLOCK);
        enum ss_err e = host_new(o.brokers, &rk, &mc, &err);
        block_stop_signals(SIG_UNBLOCK);
        if (e != SS_OK)
                goto fail;

        for (size_t i = 0; i < o.ntopics; i++)
                if (create_topic(mc, o.brokers, o.topics[i].name,
                                 o.topics[i].partitions, &err) != SS_OK)
                        goto fail;

        if (o.control != NULL) {
                have_ctl = true;
                if (control_open(&ctl, o.control, &err) != SS_OK)
                        goto fail;
        }

        boot = strdup(rd_kafka_mock_cluster_bootstraps(mc));
        if (boot == NULL) {
                ss_error_set(&err, SS_ERR_NOMEM, "out of memory");
                goto fail;
        }
        snprintf(pidtext, sizeof(pidtext), "%ld\n", (long)getpid());
        if (announce(&o, boot, pidtext, &err) != SS_OK)
                goto fail;

        serve(have_ctl ? &ctl : NULL, mc, o.brokers);

        struct log_line l;

        log_begin(&l, LOG_INFO, "stopping");
        log_kv(&l, "signal", stop_signal == SIGINT ? "SIGINT" : "SIGTERM");
        log_end(&l);
        rc = 0;
        goto out;

fail:
        log_fatal(&err);
out:
        if (have_ctl)
                control_close(&ctl);
        if (mc != NULL)
                rd_kafka_mock_cluster_destroy(mc);
        if (rk != NULL)
                rd_kafka_destroy(rk);
        if (boot != NULL && o.bootstrap_file != NULL)
                unlink_if_ours(o.bootstrap_file, boot, true);
        if (boot != NULL && o.pid_file != NULL)
                unlink_if_ours(o.pid_file, pidtext, false);
        if (rc == 0 && rk != NULL) {
                log_begin(&l, LOG_INFO, "stopped");
                log_end(&l);
        }
        free(boot);
        for (size_t i = 0; i < o.ntopics; i++)
                free(o.topics[i].name);
        free(o.topics);
        return rc;
}
