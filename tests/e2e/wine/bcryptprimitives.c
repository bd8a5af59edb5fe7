/*
 * A stand-in bcryptprimitives.dll for running Rust programs under Wine 8 (Debian 12).
 *
 * Rust's standard library (1.78 and later) gets its random bytes from ProcessPrng, which
 * Windows 10 exports from bcryptprimitives.dll. Wine 8 has no such DLL, so a Rust .exe does
 * not even start there (the loader fails with status c0000135). This DLL, put beside the
 * .exe, exports ProcessPrng and fills the buffer from advapi32's RtlGenRandom (exported as
 * SystemFunction036), which Wine does have.
 *
 * For tests only (tests/e2e/wine.sh builds it): Windows itself never loads it.
 * Build: x86_64-w64-mingw32-gcc -shared -O2 -s -o bcryptprimitives.dll bcryptprimitives.c -ladvapi32
 */
#include <windows.h>

/* advapi32's SystemFunction036, better known as RtlGenRandom; declared here so that no
 * particular header (ntsecapi.h) is needed. */
BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

/* ProcessPrng never fails on Windows: Rust's std treats its result as always TRUE. Fill
 * large buffers in ULONG-sized pieces, since RtlGenRandom takes a 32-bit length. */
__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T length)
{
    while (length > 0) {
        ULONG piece = length > 0x40000000 ? 0x40000000 : (ULONG)length;
        if (!SystemFunction036(data, piece))
            return FALSE;
        data += piece;
        length -= piece;
    }
    return TRUE;
}
