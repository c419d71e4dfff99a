/* The table of built-in adapters, looked up by the integration's platform
 * name. */
#include <string.h>

#include "adapter.h"

extern const struct adapter_ops shopify_adapter;
extern const struct adapter_ops woocommerce_adapter;
extern const struct adapter_ops bigcommerce_adapter;
extern const struct adapter_ops magento_adapter;

const struct adapter_ops *const adapter_all[] = {
#ifdef SS_HAVE_SHOPIFY
        &shopify_adapter,
#endif
#ifdef SS_HAVE_WOOCOMMERCE
        &woocommerce_adapter,
#endif
#ifdef SS_HAVE_BIGCOMMERCE
        &bigcommerce_adapter,
#endif
#ifdef SS_HAVE_MAGENTO
        &magento_adapter,
#endif
        NULL,
};

const struct adapter_ops *adapter_find(const char *platform)
{
        for (size_t i = 0; adapter_all[i] != NULL; i++)
                if (strcmp(adapter_all[i]->platform, platform) == 0)
                        return adapter_all[i];
        return NULL;
}
