/* sha256: FIPS 180-4 test vectors, fed whole and in uneven pieces. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../../common/sha256.h"

static void hash_is(const char *in, size_t len, size_t step, const char *want)
{
        struct sha256 h;
        char hex[SHA256_HEX_LEN + 1];
        sha256_init(&h);
        for (size_t i = 0; i < len; i += step)
                sha256_update(&h, in + i, len - i < step ? len - i : step);
        sha256_hex(&h, hex);
        assert_string_equal(hex, want);
}

static void test_vectors(void **state)
{
        (void)state;
        static const char *abc = "abc";
        static const char *two =
                "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
        for (size_t step = 1; step <= 70; step++) {
                hash_is("", 0, step,
                        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca49"
                        "5991b7852b855");
                hash_is(abc, 3, step,
                        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb41"
                        "0ff61f20015ad");
                hash_is(two, strlen(two), step,
                        "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6e"
                        "cedd419db06c1");
        }
}

static void test_million_a(void **state)
{
        (void)state;
        char *a = malloc(1000000);
        assert_non_null(a);
        memset(a, 'a', 1000000);
        hash_is(a, 1000000, 4093,
                "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7"
                "112cd0");
        free(a);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_vectors),
                cmocka_unit_test(test_million_a),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
