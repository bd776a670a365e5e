/* fake_nvml.c: a stand-in for the NVIDIA driver's libnvidia-ml.so.1, for tests only.
 *
 * tests/nvml_fake.py compiles it with the machine's C compiler
 *     cc -shared -fPIC -o <dir>/libnvidia-ml.so.1 fake_nvml.c
 * and puts <dir> first on the LD_LIBRARY_PATH of the audit's child process, so that
 * pynvml's own CDLL("libnvidia-ml.so.1") loads this file. pynvml is never patched: the
 * probe runs the same Python code it runs against a real driver, through the same C ABI
 * (symbol names, argument and struct layouts as NVML's nvml.h declares them).
 *
 * The machine it pretends to be is read at nvmlInit from the text file named by the
 * environment variable FAKE_NVML_MACHINE. Without the variable, or when the file cannot
 * be opened, nvmlInit answers NVML_ERROR_DRIVER_NOT_LOADED, as the real library does
 * where the kernel module is not loaded. A malformed description is a bug in a test:
 * the library prints "fake_nvml: <file>:<line>: <problem>" on stderr and exits 97.
 *
 * ---- Description format ------------------------------------------------------------
 * One statement per line. Blank lines and lines starting with '#' are ignored. After
 * the statement word come KEY=VALUE words separated by blanks; a VALUE may be written
 * "in double quotes" to hold blanks. Numbers are decimal, or hexadecimal with 0x. In text
 * values (names, UUIDs, bus ids, versions) \xHH stands for the byte 0xHH, so that a
 * description can hold bytes that are not UTF-8: name="NVIDIA H100\xff\xfe".
 *
 *   driver 570.86.15          nvmlSystemGetDriverVersion       (left out: NOT_SUPPORTED)
 *   cuda 12080                nvmlSystemGetCudaDriverVersion(_v2) (left out: NOT_SUPPORTED)
 *   nvml 12.570.86.15         nvmlSystemGetNVMLVersion         (left out: NOT_SUPPORTED)
 *
 *   gpu KEY=VALUE ...         one GPU; GPUs are numbered 0, 1, ... in file order
 *       name="NVIDIA H100 80GB HBM3"   nvmlDeviceGetName
 *       uuid=GPU-...                   nvmlDeviceGetUUID
 *       brand=14                       nvmlDeviceGetBrand (nvmlBrandType_t number)
 *       arch=9                         nvmlDeviceGetArchitecture (nvmlDeviceArchitecture_t)
 *       cc=9.0                         nvmlDeviceGetCudaComputeCapability
 *       mem_total=BYTES mem_free=BYTES mem_reserved=BYTES
 *                                      nvmlDeviceGetMemoryInfo and _v2 (free defaults to
 *                                      total - reserved, reserved to 0)
 *       bus=00000000:1B:00.0 pci_id=0x233010DE
 *                                      nvmlDeviceGetPciInfo_v3
 *       mig_current=0|1 mig_pending=0|1
 *                                      nvmlDeviceGetMigMode (left out: NOT_SUPPORTED;
 *                                      pending defaults to current)
 *       max_mig=7                      nvmlDeviceGetMaxMigDeviceCount (default 7 when
 *                                      mig_current is given, else NOT_SUPPORTED)
 *       compute_mode=0..3              nvmlDeviceGetComputeMode (nvmlComputeMode_t)
 *       power_mw=700000                nvmlDeviceGetPowerManagementLimit (milliwatts)
 *       power_default_mw=700000        nvmlDeviceGetPowerManagementDefaultLimit (milliwatts)
 *       procs=3                        nvmlDeviceGetComputeRunningProcesses_v3 (count)
 *       pcie_gen=4 pcie_gen_max=5      nvmlDeviceGetCurrPcieLinkGeneration, ...MaxPcieLinkGeneration
 *       pcie_width=8 pcie_width_max=16 nvmlDeviceGetCurrPcieLinkWidth, ...MaxPcieLinkWidth
 *       clocks_reasons=0x41            nvmlDeviceGetCurrentClocksThrottleReasons (bitmask)
 *       nvlinks=18 nvlink_max=18       nvmlDeviceGetNvLinkState: links 0..nvlinks-1 are up
 *                                      (NVML_FEATURE_ENABLED), the rest up to nvlink_max
 *                                      (default nvlinks) down, a link past them answers
 *                                      NVML_ERROR_INVALID_ARGUMENT
 *     Any key left out makes its query answer NVML_ERROR_NOT_SUPPORTED unless noted.
 *
 *   mig gpu=N index=SLOT uuid=MIG-... mem_total=BYTES [mem_free=BYTES] [name="..."] [procs=N]
 *       a MIG device of GPU N in slot SLOT (0 <= SLOT < max_mig) for
 *       nvmlDeviceGetMigDeviceHandleByIndex; an empty slot answers NVML_ERROR_NOT_FOUND.
 *       Its handle answers UUID, name, memory, compute capability (its GPU's) and
 *       processes; other queries on it answer NVML_ERROR_INVALID_ARGUMENT.
 *
 *   p2p gpu=A peer=B [read=STATUS] [nvlink=STATUS]
 *       what nvmlDeviceGetP2PStatus answers for GPUs A and B (either order) with
 *       NVML_P2P_CAPS_INDEX_READ and NVML_P2P_CAPS_INDEX_NVLINK: an nvmlGpuP2PStatus_t
 *       number (0 OK, 5 NOT_SUPPORTED, 4 DISABLED_BY_REGKEY...). A pair or an index not
 *       given answers NVML_ERROR_NOT_SUPPORTED, as does any other index.
 *
 *   fail [gpu=N [mig=SLOT]] FUNCTION=CODE
 *       FUNCTION answers nvmlReturn_t CODE instead of working, e.g. 999
 *       (NVML_ERROR_UNKNOWN), 15 (NVML_ERROR_GPU_IS_LOST), 3 (NVML_ERROR_NOT_SUPPORTED),
 *       9 (NVML_ERROR_DRIVER_NOT_LOADED). Without gpu= it applies to every call of
 *       FUNCTION; with gpu=N only to calls about GPU N (by index or by its handle, not
 *       its MIG devices' handles); with mig=SLOT too, only to that MIG device's handle.
 *       A FUNCTION without a _vN suffix matches every version (nvmlDeviceGetMemoryInfo
 *       also matches nvmlDeviceGetMemoryInfo_v2, nvmlInit matches nvmlInit_v2 and
 *       nvmlInitWithFlags); with a suffix it matches only that symbol.
 *
 *   delay [gpu=N] FUNCTION=MILLISECONDS
 *       FUNCTION sleeps that long before answering (a driver that hangs).
 *
 *   count N
 *       nvmlDeviceGetCount answers N instead of the number of gpu lines (a driver that
 *       reports absurdly many GPUs); the GPUs past the described ones answer as the
 *       last described one. Needs a gpu line.
 *
 * With the environment variable FAKE_NVML_LOG set, every call appends its symbol name
 * and a newline to that file, so a test can see what was called (nvmlShutdown...).
 */

#define _POSIX_C_SOURCE 200809L
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef int nvmlReturn_t;

#define NVML_SUCCESS 0
#define NVML_ERROR_UNINITIALIZED 1
#define NVML_ERROR_INVALID_ARGUMENT 2
#define NVML_ERROR_NOT_SUPPORTED 3
#define NVML_ERROR_NOT_FOUND 6
#define NVML_ERROR_INSUFFICIENT_SIZE 7
#define NVML_ERROR_DRIVER_NOT_LOADED 9
#define NVML_ERROR_ARGUMENT_VERSION_MISMATCH 25
#define NVML_ERROR_UNKNOWN 999

#define MAX_GPUS 64
#define MAX_MIG 16
#define MAX_RULES 256
#define TEXT 128

/* What a key was given as; `has` says which keys a line set. */
enum key {
    K_NAME, K_UUID, K_BRAND, K_ARCH, K_CC, K_MEM_TOTAL, K_MEM_FREE, K_MEM_RESERVED, K_BUS,
    K_PCI_ID, K_MIG_CURRENT, K_MIG_PENDING, K_MAX_MIG, K_COMPUTE_MODE, K_POWER, K_POWER_DEFAULT, K_PROCS,
    K_PCIE_GEN, K_PCIE_GEN_MAX, K_PCIE_WIDTH, K_PCIE_WIDTH_MAX, K_CLOCKS_REASONS, K_NVLINKS, K_NVLINK_MAX,
    K_GPU, K_INDEX, K_COUNT
};
static const char *const KEY_NAMES[K_COUNT] = {
    "name", "uuid", "brand", "arch", "cc", "mem_total", "mem_free", "mem_reserved", "bus",
    "pci_id", "mig_current", "mig_pending", "max_mig", "compute_mode", "power_mw", "power_default_mw", "procs",
    "pcie_gen", "pcie_gen_max", "pcie_width", "pcie_width_max", "clocks_reasons", "nvlinks", "nvlink_max",
    "gpu", "index",
};

struct fake_device {
    int gpu;  /* the GPU it is, or belongs to */
    int mig;  /* -1 for a whole GPU, else its MIG slot */
    int present;
    unsigned long has;  /* bit (1 << enum key) for each key given */
    char name[TEXT], uuid[TEXT], bus[TEXT];
    int cc_major, cc_minor;
    unsigned long long num[K_COUNT];  /* numeric keys */
};

struct rule {
    char function[TEXT];
    int gpu, mig;  /* -1: any */
    long value;    /* the return code (fail) or milliseconds (delay) */
    int is_delay;
};

static int initialized;  /* nvmlInit reference count */
static char driver_version[TEXT], nvml_version[TEXT];
static int has_driver, has_nvml, has_cuda, cuda_version;
static unsigned int reported_count;  /* what nvmlDeviceGetCount answers */
static int has_count;
static struct fake_device gpus[MAX_GPUS];
static struct fake_device migs[MAX_GPUS][MAX_MIG];
static int gpu_count;
static struct rule rules[MAX_RULES];
static int rule_count;
/* nvmlGpuP2PStatus_t by pair and capability (read, NVLink); -1: NVML_ERROR_NOT_SUPPORTED */
static int p2p_read[MAX_GPUS][MAX_GPUS], p2p_nvlink[MAX_GPUS][MAX_GPUS];

typedef struct fake_device *nvmlDevice_t;

/* ---- description parsing ----------------------------------------------------------- */

static const char *parse_path;
static int parse_line;

static void die(const char *problem, const char *detail) {
    fprintf(stderr, "fake_nvml: %s:%d: %s%s%s\n", parse_path, parse_line, problem,
            detail ? ": " : "", detail ? detail : "");
    fflush(stderr);
    exit(97);
}

/* Copy a text value, turning each \xHH into the byte 0xHH. */
static void copy_text(char *to, const char *from) {
    size_t n = 0;
    for (const char *p = from; *p; n++) {
        if (n + 1 >= TEXT) die("value too long", from);
        if (p[0] == '\\' && p[1] == 'x' && isxdigit((unsigned char)p[2]) && isxdigit((unsigned char)p[3])) {
            char hex[3] = {p[2], p[3], '\0'};
            to[n] = (char)strtol(hex, NULL, 16);
            if (!to[n]) die("\\x00 would end the text", from);
            p += 4;
        } else {
            to[n] = *p++;
        }
    }
    to[n] = '\0';
}

/* Next blank-separated word of *cursor into word (quotes removed); 0 at end of line. */
static int next_word(char **cursor, char *word) {
    char *p = *cursor;
    size_t n = 0;
    int quoted = 0;
    while (*p && isspace((unsigned char)*p)) p++;
    if (!*p) return 0;
    while (*p && (quoted || !isspace((unsigned char)*p))) {
        if (*p == '"') {
            quoted = !quoted;
        } else {
            if (n + 1 >= 2 * TEXT) die("word too long", NULL);
            word[n++] = *p;
        }
        p++;
    }
    if (quoted) die("unterminated quote", NULL);
    word[n] = '\0';
    *cursor = p;
    return 1;
}

static unsigned long long number(const char *text) {
    char *end;
    errno = 0;
    unsigned long long value = strtoull(text, &end, 0);
    if (errno || end == text || *end || text[0] == '-') die("not a number", text);
    return value;
}

static void split(char *word, char **key, char **value) {
    char *eq = strchr(word, '=');
    if (!eq || eq == word) die("expected KEY=VALUE", word);
    *eq = '\0';
    *key = word;
    *value = eq + 1;
}

static enum key find_key(const char *key) {
    for (int k = 0; k < K_COUNT; k++)
        if (strcmp(KEY_NAMES[k], key) == 0) return (enum key)k;
    die("unknown key", key);
    return K_COUNT;
}

static void set_key(struct fake_device *d, enum key k, const char *value) {
    switch (k) {
    case K_NAME: copy_text(d->name, value); break;
    case K_UUID: copy_text(d->uuid, value); break;
    case K_BUS: copy_text(d->bus, value); break;
    case K_CC:
        if (sscanf(value, "%d.%d", &d->cc_major, &d->cc_minor) != 2) die("cc is not M.m", value);
        break;
    default: d->num[k] = number(value); break;
    }
    d->has |= 1UL << k;
}

static void parse_device(struct fake_device *d, char *rest, int is_mig) {
    char word[2 * TEXT], *key, *value;
    while (next_word(&rest, word)) {
        split(word, &key, &value);
        enum key k = find_key(key);
        if (!is_mig && (k == K_GPU || k == K_INDEX)) die("gpu lines are numbered by their order", key);
        set_key(d, k, value);
    }
}

static void parse_rule(char *rest, int is_delay) {
    char word[2 * TEXT], *key, *value;
    if (rule_count == MAX_RULES) die("too many fail/delay lines", NULL);
    struct rule *r = &rules[rule_count];
    r->gpu = r->mig = -1;
    r->is_delay = is_delay;
    r->function[0] = '\0';
    while (next_word(&rest, word)) {
        split(word, &key, &value);
        if (strcmp(key, "gpu") == 0) {
            r->gpu = (int)number(value);
        } else if (strcmp(key, "mig") == 0) {
            r->mig = (int)number(value);
        } else {
            if (r->function[0]) die("one function per line", key);
            copy_text(r->function, key);
            r->value = (long)number(value);
        }
    }
    if (!r->function[0]) die("no FUNCTION=VALUE", NULL);
    if (r->mig >= 0 && r->gpu < 0) die("mig= needs gpu=", NULL);
    rule_count++;
}

static void parse_p2p(char *rest) {
    char word[2 * TEXT], *key, *value;
    long gpu = -1, peer = -1, read = -1, nvlink = -1;
    while (next_word(&rest, word)) {
        split(word, &key, &value);
        long n = (long)number(value);
        if (strcmp(key, "gpu") == 0) gpu = n;
        else if (strcmp(key, "peer") == 0) peer = n;
        else if (strcmp(key, "read") == 0) read = n;
        else if (strcmp(key, "nvlink") == 0) nvlink = n;
        else die("unknown key", key);
    }
    if (gpu < 0 || peer < 0) die("p2p lines need gpu= and peer=", NULL);
    if (gpu >= gpu_count || peer >= gpu_count) die("p2p line before its gpu lines", NULL);
    p2p_read[gpu][peer] = p2p_read[peer][gpu] = (int)read;
    p2p_nvlink[gpu][peer] = p2p_nvlink[peer][gpu] = (int)nvlink;
}

static int load(const char *path) {
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    char line[4096];
    parse_path = path;
    parse_line = 0;
    gpu_count = rule_count = has_driver = has_nvml = has_cuda = has_count = 0;
    memset(gpus, 0, sizeof gpus);
    memset(migs, 0, sizeof migs);
    for (int a = 0; a < MAX_GPUS; a++)
        for (int b = 0; b < MAX_GPUS; b++) p2p_read[a][b] = p2p_nvlink[a][b] = -1;
    while (fgets(line, sizeof line, f)) {
        parse_line++;
        char word[2 * TEXT], *rest = line;
        if (!next_word(&rest, word) || word[0] == '#') continue;
        if (strcmp(word, "driver") == 0 || strcmp(word, "nvml") == 0 || strcmp(word, "cuda") == 0) {
            char value[2 * TEXT], extra[2 * TEXT];
            if (!next_word(&rest, value) || next_word(&rest, extra)) die("expected one value", word);
            if (word[0] == 'd') { copy_text(driver_version, value); has_driver = 1; }
            else if (word[0] == 'n') { copy_text(nvml_version, value); has_nvml = 1; }
            else { cuda_version = (int)number(value); has_cuda = 1; }
        } else if (strcmp(word, "gpu") == 0) {
            if (gpu_count == MAX_GPUS) die("too many GPUs", NULL);
            struct fake_device *d = &gpus[gpu_count];
            d->gpu = gpu_count++;
            d->mig = -1;
            d->present = 1;
            parse_device(d, rest, 0);
        } else if (strcmp(word, "mig") == 0) {
            struct fake_device parsed;
            memset(&parsed, 0, sizeof parsed);
            parse_device(&parsed, rest, 1);
            unsigned long need = (1UL << K_GPU) | (1UL << K_INDEX);
            if ((parsed.has & need) != need) die("mig lines need gpu= and index=", NULL);
            if (parsed.num[K_GPU] >= (unsigned long long)gpu_count) die("mig line before its gpu line", NULL);
            if (parsed.num[K_INDEX] >= MAX_MIG) die("MIG slot out of range", NULL);
            parsed.gpu = (int)parsed.num[K_GPU];
            parsed.mig = (int)parsed.num[K_INDEX];
            parsed.present = 1;
            migs[parsed.gpu][parsed.mig] = parsed;
        } else if (strcmp(word, "count") == 0) {
            char value[2 * TEXT], extra[2 * TEXT];
            if (!next_word(&rest, value) || next_word(&rest, extra)) die("expected one value", word);
            reported_count = (unsigned int)number(value);
            has_count = 1;
        } else if (strcmp(word, "p2p") == 0) {
            parse_p2p(rest);
        } else if (strcmp(word, "fail") == 0) {
            parse_rule(rest, 0);
        } else if (strcmp(word, "delay") == 0) {
            parse_rule(rest, 1);
        } else {
            die("unknown statement", word);
        }
    }
    if (has_count && gpu_count == 0) die("count needs a gpu line", NULL);
    if (!has_count) reported_count = (unsigned int)gpu_count;
    fclose(f);
    return 1;
}

/* ---- call bookkeeping -------------------------------------------------------------- */

static void log_call(const char *symbol) {
    const char *path = getenv("FAKE_NVML_LOG");
    if (!path || !*path) return;
    FILE *f = fopen(path, "a");
    if (!f) return;
    fprintf(f, "%s\n", symbol);
    fclose(f);
}

/* Whether rule name `function` names `symbol`: exactly, or as its unversioned name. */
static int names(const char *function, const char *symbol) {
    if (strcmp(function, symbol) == 0) return 1;
    if (strcmp(function, "nvmlInit") == 0 && strncmp(symbol, "nvmlInit", 8) == 0) return 1;
    size_t n = strlen(function);
    if (strncmp(function, symbol, n) != 0) return 0;
    const char *suffix = symbol + n;  /* must be _v<digits> */
    if (suffix[0] != '_' || suffix[1] != 'v' || !isdigit((unsigned char)suffix[2])) return 0;
    for (suffix += 2; *suffix; suffix++)
        if (!isdigit((unsigned char)*suffix)) return 0;
    return 1;
}

/* Apply the delays for this call and return its injected failure, or NVML_SUCCESS. */
static nvmlReturn_t injected(const char *symbol, int gpu, int mig) {
    nvmlReturn_t failure = NVML_SUCCESS;
    for (int i = 0; i < rule_count; i++) {
        const struct rule *r = &rules[i];
        if (!names(r->function, symbol)) continue;
        if (r->gpu >= 0 && r->gpu != gpu) continue;
        if (r->gpu >= 0 && r->mig != mig) continue;
        if (r->is_delay) {
            struct timespec t = {r->value / 1000, (r->value % 1000) * 1000000L};
            while (nanosleep(&t, &t) != 0 && errno == EINTR) {}
        } else if (failure == NVML_SUCCESS) {
            failure = (nvmlReturn_t)r->value;
        }
    }
    return failure;
}

static nvmlReturn_t enter(const char *symbol, int gpu, int mig) {
    log_call(symbol);
    return injected(symbol, gpu, mig);
}

#define ENTER_SYSTEM(symbol)                                    \
    do {                                                        \
        nvmlReturn_t injected_ = enter(symbol, -1, -1);         \
        if (!initialized) return NVML_ERROR_UNINITIALIZED;      \
        if (injected_) return injected_;                        \
    } while (0)

static int valid(nvmlDevice_t d) {
    if (!d) return 0;
    if (d >= &gpus[0] && d < &gpus[gpu_count]) return 1;
    if (d >= &migs[0][0] && d < &migs[0][0] + MAX_GPUS * MAX_MIG) return d->present;
    return 0;
}

#define ENTER_DEVICE(symbol, device)                                            \
    do {                                                                        \
        nvmlReturn_t injected_ = enter(symbol, valid(device) ? (device)->gpu : -2, \
                                       valid(device) ? (device)->mig : -2);     \
        if (!initialized) return NVML_ERROR_UNINITIALIZED;                      \
        if (!valid(device)) return NVML_ERROR_INVALID_ARGUMENT;                 \
        if (injected_) return injected_;                                        \
    } while (0)

#define HAS(d, k) ((d)->has & (1UL << (k)))
#define NEED(d, k) \
    do { if (!HAS(d, k)) return NVML_ERROR_NOT_SUPPORTED; } while (0)
#define WHOLE_GPU(d) \
    do { if ((d)->mig >= 0) return NVML_ERROR_INVALID_ARGUMENT; } while (0)

static nvmlReturn_t give_text(const char *text, char *out, unsigned int length) {
    if (!out) return NVML_ERROR_INVALID_ARGUMENT;
    if (strlen(text) + 1 > length) return NVML_ERROR_INSUFFICIENT_SIZE;
    strcpy(out, text);
    return NVML_SUCCESS;
}

/* ---- system ------------------------------------------------------------------------ */

nvmlReturn_t nvmlInitWithFlags(unsigned int flags) {
    (void)flags;
    const char *path = getenv("FAKE_NVML_MACHINE");
    if (initialized == 0) {
        rule_count = 0;  /* rules come from the file, so none apply before it is read */
        if (!path || !*path || !load(path)) {
            log_call("nvmlInitWithFlags");
            return NVML_ERROR_DRIVER_NOT_LOADED;
        }
    }
    nvmlReturn_t failure = enter("nvmlInitWithFlags", -1, -1);
    if (failure) return failure;
    initialized++;
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlInit_v2(void) { return nvmlInitWithFlags(0); }
nvmlReturn_t nvmlInit(void) { return nvmlInitWithFlags(0); }

nvmlReturn_t nvmlShutdown(void) {
    ENTER_SYSTEM("nvmlShutdown");
    initialized--;
    return NVML_SUCCESS;
}

const char *nvmlErrorString(nvmlReturn_t result) {
    switch (result) {
    case 0: return "Success";
    case 1: return "Uninitialized";
    case 2: return "Invalid Argument";
    case 3: return "Not Supported";
    case 4: return "Insufficient Permissions";
    case 5: return "Already Initialized";
    case 6: return "Not Found";
    case 7: return "Insufficient Size";
    case 8: return "Insufficient External Power";
    case 9: return "Driver Not Loaded";
    case 10: return "Timeout";
    case 12: return "NVML Shared Library Not Found";
    case 13: return "Function Not Found";
    case 14: return "Corrupted infoROM";
    case 15: return "GPU is lost";
    case 16: return "GPU requires restart";
    case 17: return "The operating system has blocked the request.";
    case 18: return "RM has detected an NVML/RM version mismatch.";
    case 25: return "Argument version mismatch";
    case 999: return "Unknown Error";
    default: return "Unknown Error";
    }
}

nvmlReturn_t nvmlSystemGetDriverVersion(char *version, unsigned int length) {
    ENTER_SYSTEM("nvmlSystemGetDriverVersion");
    if (!has_driver) return NVML_ERROR_NOT_SUPPORTED;
    return give_text(driver_version, version, length);
}

nvmlReturn_t nvmlSystemGetNVMLVersion(char *version, unsigned int length) {
    ENTER_SYSTEM("nvmlSystemGetNVMLVersion");
    if (!has_nvml) return NVML_ERROR_NOT_SUPPORTED;
    return give_text(nvml_version, version, length);
}

static nvmlReturn_t cuda_version_of(const char *symbol, int *version) {
    ENTER_SYSTEM(symbol);
    if (!version) return NVML_ERROR_INVALID_ARGUMENT;
    if (!has_cuda) return NVML_ERROR_NOT_SUPPORTED;
    *version = cuda_version;
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlSystemGetCudaDriverVersion(int *version) {
    return cuda_version_of("nvmlSystemGetCudaDriverVersion", version);
}

nvmlReturn_t nvmlSystemGetCudaDriverVersion_v2(int *version) {
    return cuda_version_of("nvmlSystemGetCudaDriverVersion_v2", version);
}

/* ---- devices ----------------------------------------------------------------------- */

static nvmlReturn_t count_of(const char *symbol, unsigned int *count) {
    ENTER_SYSTEM(symbol);
    if (!count) return NVML_ERROR_INVALID_ARGUMENT;
    *count = reported_count;
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetCount(unsigned int *count) { return count_of("nvmlDeviceGetCount", count); }
nvmlReturn_t nvmlDeviceGetCount_v2(unsigned int *count) { return count_of("nvmlDeviceGetCount_v2", count); }

static nvmlReturn_t handle_of(const char *symbol, unsigned int index, nvmlDevice_t *device) {
    nvmlReturn_t failure = enter(symbol, (int)index, -1);
    if (!initialized) return NVML_ERROR_UNINITIALIZED;
    if (!device || index >= reported_count) return NVML_ERROR_INVALID_ARGUMENT;
    if (failure) return failure;
    *device = &gpus[index < (unsigned int)gpu_count ? index : (unsigned int)gpu_count - 1];
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetHandleByIndex(unsigned int index, nvmlDevice_t *device) {
    return handle_of("nvmlDeviceGetHandleByIndex", index, device);
}

nvmlReturn_t nvmlDeviceGetHandleByIndex_v2(unsigned int index, nvmlDevice_t *device) {
    return handle_of("nvmlDeviceGetHandleByIndex_v2", index, device);
}

nvmlReturn_t nvmlDeviceGetIndex(nvmlDevice_t device, unsigned int *index) {
    ENTER_DEVICE("nvmlDeviceGetIndex", device);
    WHOLE_GPU(device);
    if (!index) return NVML_ERROR_INVALID_ARGUMENT;
    *index = (unsigned int)device->gpu;
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetName(nvmlDevice_t device, char *name, unsigned int length) {
    ENTER_DEVICE("nvmlDeviceGetName", device);
    NEED(device, K_NAME);
    return give_text(device->name, name, length);
}

nvmlReturn_t nvmlDeviceGetUUID(nvmlDevice_t device, char *uuid, unsigned int length) {
    ENTER_DEVICE("nvmlDeviceGetUUID", device);
    NEED(device, K_UUID);
    return give_text(device->uuid, uuid, length);
}

nvmlReturn_t nvmlDeviceGetBrand(nvmlDevice_t device, int *brand) {
    ENTER_DEVICE("nvmlDeviceGetBrand", device);
    WHOLE_GPU(device);
    NEED(device, K_BRAND);
    if (!brand) return NVML_ERROR_INVALID_ARGUMENT;
    *brand = (int)device->num[K_BRAND];
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetArchitecture(nvmlDevice_t device, unsigned int *arch) {
    ENTER_DEVICE("nvmlDeviceGetArchitecture", device);
    WHOLE_GPU(device);
    NEED(device, K_ARCH);
    if (!arch) return NVML_ERROR_INVALID_ARGUMENT;
    *arch = (unsigned int)device->num[K_ARCH];
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetCudaComputeCapability(nvmlDevice_t device, int *major, int *minor) {
    ENTER_DEVICE("nvmlDeviceGetCudaComputeCapability", device);
    struct fake_device *gpu = &gpus[device->gpu];  /* a MIG device has its GPU's */
    NEED(gpu, K_CC);
    if (!major || !minor) return NVML_ERROR_INVALID_ARGUMENT;
    *major = gpu->cc_major;
    *minor = gpu->cc_minor;
    return NVML_SUCCESS;
}

typedef struct {
    unsigned long long total, free, used;
} nvmlMemory_t;

typedef struct {
    unsigned int version;
    unsigned long long total, reserved, free, used;
} nvmlMemory_v2_t;

#define nvmlMemory_v2 ((unsigned int)(sizeof(nvmlMemory_v2_t) | (2 << 24)))

static void memory_of(nvmlDevice_t d, unsigned long long *total, unsigned long long *reserved,
                      unsigned long long *free) {
    *total = d->num[K_MEM_TOTAL];
    *reserved = HAS(d, K_MEM_RESERVED) ? d->num[K_MEM_RESERVED] : 0;
    *free = HAS(d, K_MEM_FREE) ? d->num[K_MEM_FREE] : *total - *reserved;
}

nvmlReturn_t nvmlDeviceGetMemoryInfo(nvmlDevice_t device, nvmlMemory_t *memory) {
    ENTER_DEVICE("nvmlDeviceGetMemoryInfo", device);
    NEED(device, K_MEM_TOTAL);
    if (!memory) return NVML_ERROR_INVALID_ARGUMENT;
    unsigned long long total, reserved, free;
    memory_of(device, &total, &reserved, &free);
    memory->total = total;
    memory->free = free;
    memory->used = total - free;  /* v1 counts reserved memory as used */
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetMemoryInfo_v2(nvmlDevice_t device, nvmlMemory_v2_t *memory) {
    ENTER_DEVICE("nvmlDeviceGetMemoryInfo_v2", device);
    NEED(device, K_MEM_TOTAL);
    if (!memory) return NVML_ERROR_INVALID_ARGUMENT;
    if (memory->version != nvmlMemory_v2) return NVML_ERROR_ARGUMENT_VERSION_MISMATCH;
    unsigned long long total, reserved, free;
    memory_of(device, &total, &reserved, &free);
    memory->total = total;
    memory->reserved = reserved;
    memory->free = free;
    memory->used = total - reserved - free;
    return NVML_SUCCESS;
}

typedef struct {
    char busIdLegacy[16];
    unsigned int domain, bus, device, pciDeviceId, pciSubSystemId;
    char busId[32];
} nvmlPciInfo_t;

nvmlReturn_t nvmlDeviceGetPciInfo_v3(nvmlDevice_t device, nvmlPciInfo_t *pci) {
    ENTER_DEVICE("nvmlDeviceGetPciInfo_v3", device);
    WHOLE_GPU(device);
    NEED(device, K_BUS);
    if (!pci) return NVML_ERROR_INVALID_ARGUMENT;
    memset(pci, 0, sizeof *pci);
    unsigned int function = 0;
    if (sscanf(device->bus, "%x:%x:%x.%x", &pci->domain, &pci->bus, &pci->device, &function) != 4)
        return NVML_ERROR_UNKNOWN;
    if (strlen(device->bus) >= sizeof pci->busId) return NVML_ERROR_UNKNOWN;
    strcpy(pci->busId, device->bus);
    snprintf(pci->busIdLegacy, sizeof pci->busIdLegacy, "%04X:%02X:%02X.0",
             pci->domain & 0xFFFF, pci->bus & 0xFF, pci->device & 0xFF);
    pci->pciDeviceId = (unsigned int)device->num[K_PCI_ID];
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetMigMode(nvmlDevice_t device, unsigned int *current, unsigned int *pending) {
    ENTER_DEVICE("nvmlDeviceGetMigMode", device);
    WHOLE_GPU(device);
    NEED(device, K_MIG_CURRENT);
    if (!current || !pending) return NVML_ERROR_INVALID_ARGUMENT;
    *current = (unsigned int)device->num[K_MIG_CURRENT];
    *pending = (unsigned int)(HAS(device, K_MIG_PENDING) ? device->num[K_MIG_PENDING] : *current);
    return NVML_SUCCESS;
}

static unsigned int max_mig_of(nvmlDevice_t d) {
    return (unsigned int)(HAS(d, K_MAX_MIG) ? d->num[K_MAX_MIG] : 7);
}

nvmlReturn_t nvmlDeviceGetMaxMigDeviceCount(nvmlDevice_t device, unsigned int *count) {
    ENTER_DEVICE("nvmlDeviceGetMaxMigDeviceCount", device);
    WHOLE_GPU(device);
    if (!HAS(device, K_MIG_CURRENT) && !HAS(device, K_MAX_MIG)) return NVML_ERROR_NOT_SUPPORTED;
    if (!count) return NVML_ERROR_INVALID_ARGUMENT;
    *count = max_mig_of(device);
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetMigDeviceHandleByIndex(nvmlDevice_t device, unsigned int index,
                                                 nvmlDevice_t *mig) {
    /* A failure injected for gpu=N mig=SLOT is about that slot, before any handle exists. */
    const char *symbol = "nvmlDeviceGetMigDeviceHandleByIndex";
    int gpu = valid(device) ? device->gpu : -2;
    log_call(symbol);
    nvmlReturn_t failure = injected(symbol, gpu, (int)index);
    if (failure == NVML_SUCCESS) failure = injected(symbol, gpu, -1);
    if (!initialized) return NVML_ERROR_UNINITIALIZED;
    if (!valid(device) || !mig) return NVML_ERROR_INVALID_ARGUMENT;
    if (failure) return failure;
    WHOLE_GPU(device);
    if (!HAS(device, K_MIG_CURRENT)) return NVML_ERROR_NOT_SUPPORTED;
    if (!device->num[K_MIG_CURRENT]) return NVML_ERROR_INVALID_ARGUMENT;
    if (index >= max_mig_of(device) || index >= MAX_MIG) return NVML_ERROR_INVALID_ARGUMENT;
    if (!migs[device->gpu][index].present) return NVML_ERROR_NOT_FOUND;
    *mig = &migs[device->gpu][index];
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceIsMigDeviceHandle(nvmlDevice_t device, unsigned int *is_mig) {
    ENTER_DEVICE("nvmlDeviceIsMigDeviceHandle", device);
    if (!is_mig) return NVML_ERROR_INVALID_ARGUMENT;
    *is_mig = device->mig >= 0;
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetDeviceHandleFromMigDeviceHandle(nvmlDevice_t mig, nvmlDevice_t *device) {
    ENTER_DEVICE("nvmlDeviceGetDeviceHandleFromMigDeviceHandle", mig);
    if (!device || mig->mig < 0) return NVML_ERROR_INVALID_ARGUMENT;
    *device = &gpus[mig->gpu];
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetComputeMode(nvmlDevice_t device, int *mode) {
    ENTER_DEVICE("nvmlDeviceGetComputeMode", device);
    WHOLE_GPU(device);
    NEED(device, K_COMPUTE_MODE);
    if (!mode) return NVML_ERROR_INVALID_ARGUMENT;
    *mode = (int)device->num[K_COMPUTE_MODE];
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetPowerManagementLimit(nvmlDevice_t device, unsigned int *limit) {
    ENTER_DEVICE("nvmlDeviceGetPowerManagementLimit", device);
    WHOLE_GPU(device);
    NEED(device, K_POWER);
    if (!limit) return NVML_ERROR_INVALID_ARGUMENT;
    *limit = (unsigned int)device->num[K_POWER];
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetPowerManagementDefaultLimit(nvmlDevice_t device, unsigned int *limit) {
    ENTER_DEVICE("nvmlDeviceGetPowerManagementDefaultLimit", device);
    WHOLE_GPU(device);
    NEED(device, K_POWER_DEFAULT);
    if (!limit) return NVML_ERROR_INVALID_ARGUMENT;
    *limit = (unsigned int)device->num[K_POWER_DEFAULT];
    return NVML_SUCCESS;
}

/* The PCIe link queries all answer one unsigned int from one key. */
#define UINT_QUERY(symbol, key)                                          \
    nvmlReturn_t symbol(nvmlDevice_t device, unsigned int *value) {      \
        ENTER_DEVICE(#symbol, device);                                   \
        WHOLE_GPU(device);                                               \
        NEED(device, key);                                               \
        if (!value) return NVML_ERROR_INVALID_ARGUMENT;                  \
        *value = (unsigned int)device->num[key];                         \
        return NVML_SUCCESS;                                             \
    }
UINT_QUERY(nvmlDeviceGetCurrPcieLinkGeneration, K_PCIE_GEN)
UINT_QUERY(nvmlDeviceGetMaxPcieLinkGeneration, K_PCIE_GEN_MAX)
UINT_QUERY(nvmlDeviceGetCurrPcieLinkWidth, K_PCIE_WIDTH)
UINT_QUERY(nvmlDeviceGetMaxPcieLinkWidth, K_PCIE_WIDTH_MAX)

nvmlReturn_t nvmlDeviceGetCurrentClocksThrottleReasons(nvmlDevice_t device, unsigned long long *reasons) {
    ENTER_DEVICE("nvmlDeviceGetCurrentClocksThrottleReasons", device);
    WHOLE_GPU(device);
    NEED(device, K_CLOCKS_REASONS);
    if (!reasons) return NVML_ERROR_INVALID_ARGUMENT;
    *reasons = device->num[K_CLOCKS_REASONS];
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetNvLinkState(nvmlDevice_t device, unsigned int link, unsigned int *active) {
    ENTER_DEVICE("nvmlDeviceGetNvLinkState", device);
    WHOLE_GPU(device);
    NEED(device, K_NVLINKS);
    if (!active) return NVML_ERROR_INVALID_ARGUMENT;
    unsigned long long links = HAS(device, K_NVLINK_MAX) ? device->num[K_NVLINK_MAX] : device->num[K_NVLINKS];
    if (link >= links) return NVML_ERROR_INVALID_ARGUMENT;
    *active = link < device->num[K_NVLINKS];  /* NVML_FEATURE_ENABLED or _DISABLED */
    return NVML_SUCCESS;
}

#define NVML_P2P_CAPS_INDEX_READ 0
#define NVML_P2P_CAPS_INDEX_NVLINK 2

nvmlReturn_t nvmlDeviceGetP2PStatus(nvmlDevice_t device1, nvmlDevice_t device2, unsigned int index,
                                    unsigned int *status) {
    ENTER_DEVICE("nvmlDeviceGetP2PStatus", device1);
    if (!valid(device2) || !status) return NVML_ERROR_INVALID_ARGUMENT;
    WHOLE_GPU(device1);
    WHOLE_GPU(device2);
    int value = index == NVML_P2P_CAPS_INDEX_READ ? p2p_read[device1->gpu][device2->gpu]
              : index == NVML_P2P_CAPS_INDEX_NVLINK ? p2p_nvlink[device1->gpu][device2->gpu] : -1;
    if (value < 0) return NVML_ERROR_NOT_SUPPORTED;
    *status = (unsigned int)value;
    return NVML_SUCCESS;
}

typedef struct {
    unsigned int pid;
    unsigned long long usedGpuMemory;
    unsigned int gpuInstanceId, computeInstanceId;
} nvmlProcessInfo_t;

/* NVML's two-call protocol: with too small a buffer (or none), answer the count needed
   and NVML_ERROR_INSUFFICIENT_SIZE; with no processes, count 0 and success. */
static nvmlReturn_t processes_of(nvmlDevice_t device, unsigned int *count, nvmlProcessInfo_t *infos) {
    NEED(device, K_PROCS);
    if (!count) return NVML_ERROR_INVALID_ARGUMENT;
    unsigned int n = (unsigned int)device->num[K_PROCS];
    if (n == 0) {
        *count = 0;
        return NVML_SUCCESS;
    }
    if (!infos || *count < n) {
        *count = n;
        return NVML_ERROR_INSUFFICIENT_SIZE;
    }
    for (unsigned int i = 0; i < n; i++) {
        infos[i].pid = 4000 + 100 * (unsigned int)device->gpu + i;
        infos[i].usedGpuMemory = (unsigned long long)(i + 1) << 30;
        infos[i].gpuInstanceId = device->mig >= 0 ? (unsigned int)device->mig : 0xFFFFFFFFu;
        infos[i].computeInstanceId = device->mig >= 0 ? 0 : 0xFFFFFFFFu;
    }
    *count = n;
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetComputeRunningProcesses_v3(nvmlDevice_t device, unsigned int *count,
                                                     nvmlProcessInfo_t *infos) {
    ENTER_DEVICE("nvmlDeviceGetComputeRunningProcesses_v3", device);
    return processes_of(device, count, infos);
}

nvmlReturn_t nvmlDeviceGetComputeRunningProcesses_v2(nvmlDevice_t device, unsigned int *count,
                                                     nvmlProcessInfo_t *infos) {
    ENTER_DEVICE("nvmlDeviceGetComputeRunningProcesses_v2", device);
    return processes_of(device, count, infos);
}
