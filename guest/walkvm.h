/* Ports and addresses of walkvm's devices, shared by every guest. */
#define COM1		0x3f8
#define DEBUG_EXIT_PORT	0xf4
#define TESTWIN_HIGH	0xff000000
#define TESTWIN_LOW	0xd0000
