/* Compiled kernels for the byte-grouped codec (see _native.py and _planes.py).
 *
 * Each kernel does in one pass what the NumPy fallback does in several; the
 * results are the same bit for bit. Values are little-endian; loads and
 * stores go through memcpy, so no buffer needs any alignment.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* The top 16 bits of a value from its head and rest bytes (PlaneLayout). */
static inline uint32_t wb_top(uint8_t head, uint8_t rest, unsigned split, unsigned rest_mask)
{
    return ((rest * 257u) & rest_mask) | ((uint32_t)head << split);
}

void wb_merge2(const uint8_t *head, const uint8_t *rest, unsigned split, unsigned rest_mask,
               uint8_t *out, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        uint16_t value = (uint16_t)wb_top(head[i], rest[i], split, rest_mask);
        memcpy(out + 2 * i, &value, 2);
    }
}

/* ``low`` holds each value's low 16 bits as they lie in memory (low halves). */
void wb_merge4_low(const uint8_t *head, const uint8_t *rest, const uint8_t *low, unsigned split,
                   unsigned rest_mask, uint8_t *out, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        uint16_t half;
        memcpy(&half, low + 2 * i, 2);
        uint32_t value = wb_top(head[i], rest[i], split, rest_mask) << 16 | half;
        memcpy(out + 4 * i, &value, 4);
    }
}

/* ``high`` and ``low`` are the two low byte planes, most significant first. */
void wb_merge4(const uint8_t *head, const uint8_t *rest, const uint8_t *high, const uint8_t *low,
               unsigned split, unsigned rest_mask, uint8_t *out, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        uint32_t value = wb_top(head[i], rest[i], split, rest_mask) << 16
                         | (uint32_t)high[i] << 8 | low[i];
        memcpy(out + 4 * i, &value, 4);
    }
}

/* The inverse of wb_merge4: cut 4-byte values into head, rest and two low planes. */
void wb_split4(const uint8_t *values, unsigned split, unsigned rest_mask, uint8_t *head,
               uint8_t *rest, uint8_t *high, uint8_t *low, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        uint32_t value;
        memcpy(&value, values + 4 * i, 4);
        uint32_t top = value >> 16;
        uint32_t kept = top & rest_mask;
        head[i] = (uint8_t)(top >> split);
        rest[i] = (uint8_t)(kept | kept >> 8);
        high[i] = (uint8_t)(value >> 8);
        low[i] = (uint8_t)value;
    }
}

void wb_split2(const uint8_t *values, unsigned split, unsigned rest_mask, uint8_t *head,
               uint8_t *rest, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        uint16_t top;
        memcpy(&top, values + 2 * i, 2);
        unsigned kept = top & rest_mask;
        head[i] = (uint8_t)(top >> split);
        rest[i] = (uint8_t)(kept | kept >> 8);
    }
}

/* One field of a bit-packed plane (_bitpack.py): bits [first, first + width) of
 * value lane * segment + k sit at bit width * lane of field byte k. The first
 * field of a plane writes its bits over ``fill``; later ones OR theirs in.
 * Works on eight bytes at a time (segment is a multiple of 8): a 64-bit shift
 * moves every byte's field at once, and the mask drops what crossed a byte. */
void wb_unpack_field(const uint8_t *field, size_t segment, unsigned width, unsigned first,
                     int accumulate, uint8_t fill, uint8_t *out)
{
    const uint64_t ones = 0x0101010101010101ull;
    unsigned lanes = 8 / width;
    uint64_t mask = ones * (((1u << width) - 1) << first);
    uint64_t fills = ones * fill;
    size_t words = segment / 8;
    for (unsigned lane = 0; lane < lanes; lane++) {
        uint8_t *target = out + (size_t)lane * segment;
        int by = (int)first - (int)(width * lane);
        for (size_t k = 0; k < words; k++) {
            uint64_t word, bits, current;
            memcpy(&word, field + 8 * k, 8);
            bits = (by >= 0 ? word << by : word >> -by) & mask;
            if (accumulate) {
                memcpy(&current, target + 8 * k, 8);
                bits |= current;
            } else {
                bits |= fills;
            }
            memcpy(target + 8 * k, &bits, 8);
        }
    }
}

/* The inverse of wb_unpack_field: gather bits [first, first + width) of every
 * value into ``field`` (segment bytes), lane by lane. */
void wb_pack_field(const uint8_t *values, size_t segment, unsigned width, unsigned first,
                   uint8_t *field)
{
    const uint64_t ones = 0x0101010101010101ull;
    unsigned lanes = 8 / width;
    size_t words = segment / 8;
    for (unsigned lane = 0; lane < lanes; lane++) {
        const uint8_t *source = values + (size_t)lane * segment;
        int by = (int)(width * lane) - (int)first;
        uint64_t mask = ones * (((1u << width) - 1) << (width * lane));
        for (size_t k = 0; k < words; k++) {
            uint64_t word, bits, current;
            memcpy(&word, source + 8 * k, 8);
            bits = (by >= 0 ? word << by : word >> -by) & mask;
            if (lane) {
                memcpy(&current, field + 8 * k, 8);
                bits |= current;
            }
            memcpy(field + 8 * k, &bits, 8);
        }
    }
}

/* How many values have other ``fixed`` bits than ``value``. */
size_t wb_count_broken(const uint8_t *plane, size_t count, uint8_t fixed, uint8_t value)
{
    size_t broken = 0;
    size_t i = 0;
    while (i < count) {
        /* byte-wide counts vectorize; 255 values cannot overflow one */
        size_t end = count - i > 255 ? i + 255 : count;
        uint8_t block = 0;
        for (; i < end; i++)
            block += (plane[i] & fixed) != value;
        broken += block;
    }
    return broken;
}

/* Byte counts of every ``step``-th byte of ``plane`` (``count`` bytes), into
 * ``out[256]``: a sample's histogram, without NumPy's cast of it to intp. Four
 * tables take turns, so repeated bytes do not wait on one another's counts. */
void wb_histogram(const uint8_t *plane, size_t count, size_t step, uint64_t *out)
{
    uint64_t tables[4][256];
    memset(tables, 0, sizeof tables);
    size_t i = 0;
    for (; i + 3 * step < count; i += 4 * step) {
        tables[0][plane[i]]++;
        tables[1][plane[i + step]]++;
        tables[2][plane[i + 2 * step]]++;
        tables[3][plane[i + 3 * step]]++;
    }
    for (; i < count; i += step)
        tables[0][plane[i]]++;
    for (unsigned v = 0; v < 256; v++)
        out[v] = tables[0][v] + tables[1][v] + tables[2][v] + tables[3][v];
}
