#include <stddef.h>
/* Test-only stand-in for the icuuc.dll that Windows 10 and later ship and Wine 8.0 lacks.
 * Qt 6 on Windows links the system ICU for text codecs; here every converter lookup
 * fails (U_FILE_ACCESS_ERROR), so Qt falls back to its built-in UTF-8 and Latin-1.
 * Built with mingw-w64 by tests/installers/test_msi.py into the wine prefix only; it is
 * never part of the MSI. */
__declspec(dllexport) void* ucnv_open(const char* n, int* err){ if(err) *err = 2; return NULL; }
__declspec(dllexport) size_t UCNV_FROM_U_CALLBACK_SUBSTITUTE(void){ return 0; }
__declspec(dllexport) size_t UCNV_TO_U_CALLBACK_SUBSTITUTE(void){ return 0; }
__declspec(dllexport) size_t ucnv_cbFromUWriteUChars(void){ return 0; }
__declspec(dllexport) size_t ucnv_cbToUWriteUChars(void){ return 0; }
__declspec(dllexport) size_t ucnv_close(void){ return 0; }
__declspec(dllexport) size_t ucnv_countAvailable(void){ return 0; }
__declspec(dllexport) size_t ucnv_fromUCountPending(void){ return 0; }
__declspec(dllexport) size_t ucnv_fromUnicode(void){ return 0; }
__declspec(dllexport) size_t ucnv_getAvailableName(void){ return 0; }
__declspec(dllexport) size_t ucnv_getFromUCallBack(void){ return 0; }
__declspec(dllexport) size_t ucnv_getMaxCharSize(void){ return 0; }
__declspec(dllexport) size_t ucnv_getName(void){ return 0; }
__declspec(dllexport) size_t ucnv_getStandardName(void){ return 0; }
__declspec(dllexport) size_t ucnv_getToUCallBack(void){ return 0; }
__declspec(dllexport) size_t ucnv_reset(void){ return 0; }
__declspec(dllexport) size_t ucnv_setFromUCallBack(void){ return 0; }
__declspec(dllexport) size_t ucnv_setToUCallBack(void){ return 0; }
__declspec(dllexport) size_t ucnv_toUCountPending(void){ return 0; }
__declspec(dllexport) size_t ucnv_toUnicode(void){ return 0; }
