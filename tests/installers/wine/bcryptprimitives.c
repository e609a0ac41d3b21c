#include <windows.h>
#define SystemFunction036 NTAPI SystemFunction036
#include <ntsecapi.h>
#undef SystemFunction036
/* Test-only stand-in for ProcessPrng in bcryptprimitives.dll, which Windows 10 and later
 * have and Wine 8.0 lacks: the Rust standard library (in pydantic-core and cryptography)
 * takes its random bytes from it. This one asks RtlGenRandom, the same system generator.
 * Built with mingw-w64 by tests/installers/test_msi.py into the wine prefix only; it is
 * never part of the MSI. */
__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len) {
    while (len) {
        ULONG chunk = len > 0x10000000 ? 0x10000000 : (ULONG)len;
        if (!RtlGenRandom(data, chunk)) return FALSE;
        data += chunk; len -= chunk;
    }
    return TRUE;
}
