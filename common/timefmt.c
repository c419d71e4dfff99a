/* ISO 8601 UTC timestamps <-> epoch microseconds. */
#include "timefmt.h"

#define US_PER_SEC  1000000LL
#define SEC_PER_DAY 86400LL

/* Days from 1970-01-01 to y-m-d in the proleptic Gregorian calendar,
 * counting in 400-year eras that start in March so the leap day is last. */
static int64_t days_from_civil(int64_t y, int m, int d)
{
        y -= m <= 2;
        int64_t era = (y >= 0 ? y : y - 399) / 400;
        int64_t yoe = y - era * 400;
        int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
        int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        return era * 146097 + doe - 719468;
}

static void civil_from_days(int64_t z, int *y, int *m, int *d)
{
        z += 719468;
        int64_t era = (z >= 0 ? z : z - 146096) / 146097;
        int64_t doe = z - era * 146097;
        int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
        int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        int64_t mp = (5 * doy + 2) / 153;
        *d = (int)(doy - (153 * mp + 2) / 5 + 1);
        *m = (int)(mp < 10 ? mp + 3 : mp - 9);
        *y = (int)(yoe + era * 400 + (*m <= 2));
}

static bool is_leap(int y)
{
        return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int days_in_month(int y, int m)
{
        static const int dm[] = {
                31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31
        };
        return m == 2 && is_leap(y) ? 29 : dm[m - 1];
}

/* Reads exactly n digits at s[*i]. */
static bool digits(const char *s, size_t len, size_t *i, int n, int *out)
{
        int v = 0;
        for (int k = 0; k < n; k++, (*i)++) {
                if (*i >= len || s[*i] < '0' || s[*i] > '9')
                        return false;
                v = v * 10 + (s[*i] - '0');
        }
        *out = v;
        return true;
}

static bool expect(const char *s, size_t len, size_t *i, char c)
{
        if (*i >= len || s[*i] != c)
                return false;
        (*i)++;
        return true;
}

/* The zone suffix: Z, +HH:MM, +HHMM or +HH (or '-'); seconds east. */
static bool parse_zone(const char *s, size_t len, size_t *i, int *east)
{
        if (*i < len && (s[*i] == 'Z' || s[*i] == 'z')) {
                (*i)++;
                *east = 0;
                return true;
        }
        if (*i >= len || (s[*i] != '+' && s[*i] != '-'))
                return false;
        int sign = s[*i] == '-' ? -1 : 1;
        (*i)++;
        int hh = 0, mm = 0;
        if (!digits(s, len, i, 2, &hh))
                return false;
        if (*i < len && s[*i] == ':')
                (*i)++;
        if (*i < len && !digits(s, len, i, 2, &mm))
                return false;
        if (hh > 23 || mm > 59)
                return false;
        *east = sign * (hh * 3600 + mm * 60);
        return true;
}

bool timefmt_parse(const char *s, size_t len, int64_t *us)
{
        size_t i = 0;
        int y, mo, d, h, mi, sec, east;
        if (!digits(s, len, &i, 4, &y) || !expect(s, len, &i, '-') ||
            !digits(s, len, &i, 2, &mo) || !expect(s, len, &i, '-') ||
            !digits(s, len, &i, 2, &d))
                return false;
        if (i >= len || (s[i] != 'T' && s[i] != 't' && s[i] != ' '))
                return false;
        i++;
        if (!digits(s, len, &i, 2, &h) || !expect(s, len, &i, ':') ||
            !digits(s, len, &i, 2, &mi) || !expect(s, len, &i, ':') ||
            !digits(s, len, &i, 2, &sec))
                return false;
        if (y < 1 || mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo) ||
            h > 23 || mi > 59 || sec > 59)
                return false;

        int64_t frac = 0;
        if (i < len && s[i] == '.') {
                i++;
                int n = 0;
                while (i < len && s[i] >= '0' && s[i] <= '9') {
                        if (n < 6)
                                frac = frac * 10 + (s[i] - '0');
                        n++;
                        i++;
                }
                if (n == 0 || n > 9)
                        return false;
                for (; n < 6; n++)
                        frac *= 10;
        }
        if (!parse_zone(s, len, &i, &east) || i != len)
                return false;

        int64_t secs = days_from_civil(y, mo, d) * SEC_PER_DAY + h * 3600 +
                       mi * 60 + sec - east;
        *us = secs * US_PER_SEC + frac;
        return true;
}

int64_t timefmt_day(int64_t us)
{
        int64_t per_day = SEC_PER_DAY * US_PER_SEC;
        int64_t day = us / per_day;
        if (us % per_day < 0)
                day--;
        return day;
}

static void put2(char *p, int v)
{
        p[0] = (char)('0' + v / 10);
        p[1] = (char)('0' + v % 10);
}

void timefmt_day_str(int64_t day, char out[11])
{
        int y, m, d;
        civil_from_days(day, &y, &m, &d);
        /* Years outside 0000-9999 cannot be written in this format. */
        y = y < 0 ? 0 : y > 9999 ? 9999 : y;
        put2(out, y / 100);
        put2(out + 2, y % 100);
        out[4] = '-';
        put2(out + 5, m);
        out[7] = '-';
        put2(out + 8, d);
        out[10] = '\0';
}

size_t timefmt_format(int64_t us, char out[TIMEFMT_MAX])
{
        int64_t day = timefmt_day(us);
        int64_t rest = us - day * SEC_PER_DAY * US_PER_SEC;
        int secs = (int)(rest / US_PER_SEC);
        int frac = (int)(rest % US_PER_SEC);

        /* Hand-rolled: this runs once per CSV row. */
        timefmt_day_str(day, out);
        char *p = out + 10;
        *p++ = 'T';
        put2(p, secs / 3600);
        p[2] = ':';
        put2(p + 3, secs / 60 % 60);
        p[5] = ':';
        put2(p + 6, secs % 60);
        p += 8;
        if (frac != 0) {
                *p++ = '.';
                for (int k = 5; k >= 0; k--) {
                        p[k] = (char)('0' + frac % 10);
                        frac /= 10;
                }
                p += 6;
        }
        *p++ = 'Z';
        *p = '\0';
        return (size_t)(p - out);
}
