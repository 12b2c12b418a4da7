/*
 * Using smm-core from C: simulate a request file, check that the report is the
 * same on 1 and 2 threads and when computed as two shards, and show how errors
 * are reported. Build and run: see scripts/test.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "smm.h"
#include "example_util.h"


/* Progress: count the calls; stop the run once `stop_after` calls were made. */
struct watch {
    int calls;
    int stop_after;
    uint64_t last_done, total;
};

static int on_progress(void *userdata, uint64_t done, uint64_t total) {
    struct watch *w = userdata;
    w->calls++;
    w->last_done = done;
    w->total = total;
    return w->stop_after > 0 && w->calls >= w->stop_after;
}

/* Print a message for a failed call and free it. */
static void report_error(const char *what, smm_status st) {
    char *msg = smm_last_error_message();
    printf("%s -> %s: %s\n", what, smm_status_name(st), msg ? msg : "(no message)");
    smm_string_free(msg);
}

int main(int argc, char **argv) {
    const char *path = argc > 1 ? argv[1] : "examples/icblabs-seed42.request.json";
    char *request = read_file(path);
    if (!request) {
        fprintf(stderr, "cannot read %s\n", path);
        return 2;
    }
    printf("smm-core %s\n", smm_version());

    /* 1. Simulate on one and on two threads: the same bytes. */
    char *one = NULL, *two = NULL;
    smm_status st = smm_simulate_json(request, 1, &one);
    CHECK(st == SMM_OK, "simulate (1 thread): %s", smm_status_name(st));
    st = smm_simulate_json(request, 2, &two);
    CHECK(st == SMM_OK, "simulate (2 threads): %s", smm_status_name(st));
    CHECK(one && two && strcmp(one, two) == 0, "reports differ between thread counts");
    CHECK(smm_last_error_message() == NULL, "no error after success");
    if (one) {
        const char *r = strstr(one, "\"readinessScore\":{\"mean\":");
        CHECK(r != NULL, "report has a readiness mean");
        if (r) printf("readinessScore.mean = %.6f\n", atof(r + strlen("\"readinessScore\":{\"mean\":")));
    }

    /* 2. Two shards merged give exactly the single run. */
    char *no_et = replaced(request, "\"enableEarlyTermination\": true", "\"enableEarlyTermination\": false");
    CHECK(no_et != NULL, "example request has enableEarlyTermination");
    if (no_et) {
        char *single = NULL, *p0 = NULL, *p1 = NULL, *merged = NULL;
        uint64_t cut = 2 * smm_block_size();
        CHECK(smm_simulate_json(no_et, 0, &single) == SMM_OK, "single run");
        CHECK(smm_simulate_shard_json(no_et, 0, cut, 1, &p0) == SMM_OK, "shard 0");
        CHECK(smm_simulate_shard_json(no_et, cut, 1000, 1, &p1) == SMM_OK, "shard 1");
        const char *parts[2] = {p1, p0};
        st = smm_merge_partials_json(parts, 2, 0, &merged);
        CHECK(st == SMM_OK, "merge: %s", smm_status_name(st));
        CHECK(single && merged && strcmp(single, merged) == 0, "merged report differs from the single run");
        printf("2 shards merged == single run: %s\n", (single && merged && !strcmp(single, merged)) ? "yes" : "no");
        /* The same shards in their compact binary form (what a cluster ships):
         * exact samples as raw doubles, the same merged report. */
        uint8_t *b0 = NULL, *b1 = NULL;
        size_t n0 = 0, n1 = 0;
        char *merged_b = NULL;
        CHECK(smm_simulate_shard_bytes(no_et, 0, cut, 1, &b0, &n0) == SMM_OK, "binary shard 0");
        CHECK(smm_simulate_shard_bytes(no_et, cut, 1000, 1, &b1, &n1) == SMM_OK, "binary shard 1");
        const uint8_t *bparts[2] = {b1, b0};
        size_t blens[2] = {n1, n0};
        st = smm_merge_partials_bytes(bparts, blens, 2, 0, &merged_b);
        CHECK(st == SMM_OK, "binary merge: %s", smm_status_name(st));
        CHECK(single && merged_b && strcmp(single, merged_b) == 0, "binary merge differs from the single run");
        /* A damaged partial is an error naming it, never a crash. */
        size_t short_len = n1 - 1;
        const uint8_t *damaged[2] = {b1, b0};
        size_t damaged_lens[2] = {short_len, n0};
        char *never = NULL;
        st = smm_merge_partials_bytes(damaged, damaged_lens, 2, 0, &never);
        CHECK(st == SMM_INVALID_INPUT && never == NULL, "a truncated partial is refused");
        printf("binary shards: %zu + %zu bytes, merged == single run: %s\n", n0, n1,
               (single && merged_b && !strcmp(single, merged_b)) ? "yes" : "no");
        smm_bytes_free(b0, n0);
        smm_bytes_free(b1, n1);
        smm_string_free(merged_b);
        smm_string_free(single);
        smm_string_free(p0);
        smm_string_free(p1);
        smm_string_free(merged);
        free(no_et);
    }

    /* 3. A precision target, through the request JSON: stop as soon as the
     *    readiness mean is known to within 0.002 (95 % interval), and shards
     *    stop at the same iteration as the single run. */
    char *precise = replaced(request, "\"iterations\": 1000,",
                             "\"iterations\": 1000000, \"percentileMode\": \"bounded\", \"precision\": {\"halfWidth\": 0.002},");
    CHECK(precise != NULL, "example request has iterations");
    if (precise) {
        char *single = NULL, *p0 = NULL, *p1 = NULL, *merged = NULL;
        CHECK(smm_simulate_json(precise, 0, &single) == SMM_OK, "precision run");
        CHECK(single && strstr(single, "\"stoppedBy\":\"precision\"") != NULL, "stopped by the precision rule");
        const char *it = single ? strstr(single, "\"iterationsRun\":") : NULL;
        if (it) printf("precision 0.002 -> %llu iterations\n", strtoull(it + strlen("\"iterationsRun\":"), NULL, 10));
        uint64_t cut = 4 * smm_block_size();
        CHECK(smm_simulate_shard_json(precise, 0, cut, 1, &p0) == SMM_OK, "precision shard 0");
        CHECK(smm_simulate_shard_json(precise, cut, 1000000, 0, &p1) == SMM_OK, "precision shard 1");
        const char *parts[2] = {p0, p1};
        st = smm_merge_partials_json(parts, 2, 0, &merged);
        if (st != SMM_OK) report_error("precision merge", st);
        CHECK(st == SMM_OK, "precision merge");
        CHECK(single && merged && strcmp(single, merged) == 0, "precision: merged report differs");
        smm_string_free(single);
        smm_string_free(p0);
        smm_string_free(p1);
        smm_string_free(merged);
        free(precise);
    }

    /* 4. Progress and cancellation: the callback sees the run end; returning
     *    nonzero stops a long run with SMM_CANCELLED and no report. */
    {
        struct watch w = {0, 0, 0, 0};
        char *report = NULL;
        st = smm_simulate_progress_json(request, 1, on_progress, &w, &report);
        CHECK(st == SMM_OK && report != NULL, "progress run: %s", smm_status_name(st));
        CHECK(w.calls >= 1 && w.last_done == w.total, "progress reached the end (%d calls)", w.calls);
        CHECK(one && report && strcmp(one, report) == 0, "progress does not change the report");
        smm_string_free(report);

        char *longer = replaced(request, "\"iterations\": 1000,",
                                "\"iterations\": 100000000, \"percentileMode\": \"bounded\",");
        char *big = longer ? replaced(longer, "\"enableEarlyTermination\": true",
                                      "\"enableEarlyTermination\": false") : NULL;
        CHECK(big != NULL, "could not build the long request");
        if (big) {
            char *none = NULL;
            struct watch stop = {0, 1, 0, 0};
            st = smm_simulate_progress_json(big, 1, on_progress, &stop, &none);
            CHECK(st == SMM_CANCELLED && none == NULL, "cancelled run: %s", smm_status_name(st));
            CHECK(stop.calls == 1 && stop.last_done < stop.total, "stopped at the first wave");
            printf("cancelled after %llu of %llu iterations\n", (unsigned long long)stop.last_done,
                   (unsigned long long)stop.total);
            free(big);
        }
        free(longer);
    }

    /* 5. Errors: status codes, out-params untouched, a message naming the field. */
    char *out = NULL;
    st = smm_simulate_json(NULL, 1, &out);
    CHECK(st == SMM_NULL_ARGUMENT && out == NULL, "NULL request");
    report_error("smm_simulate_json(NULL)", st);

    char *bad = replaced(request, "\"riskProfile\": \"medium\"", "\"riskProfile\": \"reckless\"");
    CHECK(bad != NULL, "example request has a riskProfile");
    if (bad) {
        st = smm_simulate_json(bad, 1, &out);
        CHECK(st == SMM_INVALID_INPUT && out == NULL, "bad risk profile");
        char *msg = smm_last_error_message();
        CHECK(msg && strstr(msg, "/workspaceContext/riskProfile"), "message names the field");
        printf("bad riskProfile -> %s: %s\n", smm_status_name(st), msg ? msg : "");
        smm_string_free(msg);
        free(bad);
    }
    st = smm_simulate_json("{\"workspaceContext\": ", 1, &out);
    CHECK(st == SMM_INVALID_INPUT, "truncated JSON");
    report_error("truncated JSON", st);
    st = smm_simulate_shard_json(request, 3, 10, 1, &out);
    CHECK(st == SMM_INVALID_SHARD, "unaligned shard");
    CHECK(strcmp(smm_status_name(9999), "SMM_UNKNOWN_STATUS") == 0, "unknown status name");

    smm_string_free(one);
    smm_string_free(two);
    free(request);
    if (failures) {
        fprintf(stderr, "%d check(s) failed\n", failures);
        return 1;
    }
    printf("C example: all checks passed\n");
    return 0;
}
