/* A parameter sweep through the C ABI: readiness against the hard cap and
 * the risk profile, one row per point, reproducible point by point.
 *
 * Build: cc -std=c11 -Wall -Wextra -Werror -I smm-ffi/include examples/c/sweep.c \
 *          target/debug/libsmm.a -lm -lpthread -ldl
 * Run from the repository root. */
#include "smm.h"
#include "example_util.h"

static int count(const char *s, const char *needle) {
    int n = 0;
    for (const char *at = strstr(s, needle); at; at = strstr(at + 1, needle)) n++;
    return n;
}

int main(void) {
    char *request = read_file("examples/icblabs-seed42.request.json");
    if (!request) {
        fprintf(stderr, "run from the repository root\n");
        return 2;
    }
    const char *grid = "{\"/workspaceContext/budget/hardCap\": [2000, 8000],"
                       " \"/workspaceContext/riskProfile\": [\"low\", \"medium\", \"high\"]}";
    char *rows = NULL, *again = NULL;
    smm_status st = smm_sweep_json(request, grid, 2000, 7, 0, &rows);
    CHECK(st == SMM_OK, "sweep: %s", smm_status_name(st));
    if (rows) {
        CHECK(count(rows, "\"readiness_mean\"") == 6, "six rows");
        CHECK(strstr(rows, "\"index\":0") && strstr(rows, "\"index\":5"), "rows in sweep order");
        const char *first = strstr(rows, "\"readiness_mean\":");
        if (first) printf("first point readiness %.4f\n", atof(first + strlen("\"readiness_mean\":")));
    }
    /* The same sweep on one thread: the same bytes. */
    st = smm_sweep_json(request, grid, 2000, 7, 1, &again);
    CHECK(st == SMM_OK && rows && again && strcmp(rows, again) == 0, "a sweep is reproducible");

    /* A pointer that goes nowhere, a value the model refuses. */
    char *none = NULL;
    st = smm_sweep_json(request, "{\"/workspaceContext/nope/x\": [1]}", 100, 1, 1, &none);
    CHECK(st == SMM_INVALID_INPUT && none == NULL, "bad pointer: %s", smm_status_name(st));
    char *msg = smm_last_error_message();
    CHECK(msg && strstr(msg, "/workspaceContext/nope") != NULL, "message names the pointer: %s", msg ? msg : "");
    smm_string_free(msg);
    st = smm_sweep_json(request, "{\"/workspaceContext/riskProfile\": [\"reckless\"]}", 100, 1, 1, &none);
    CHECK(st == SMM_INVALID_INPUT, "bad value: %s", smm_status_name(st));
    CHECK(smm_sweep_json(request, "[1, 2]", 100, 1, 1, &none) == SMM_INVALID_INPUT, "grid not an object");
    CHECK(smm_sweep_json(NULL, grid, 100, 1, 1, &none) == SMM_NULL_ARGUMENT, "NULL request");

    smm_string_free(rows);
    smm_string_free(again);
    free(request);
    if (failures) {
        fprintf(stderr, "%d check(s) failed\n", failures);
        return 1;
    }
    printf("sweep example: all checks passed\n");
    return 0;
}
