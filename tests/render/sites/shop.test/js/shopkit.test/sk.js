window.ShopKit = {version: "2.0.1", cart: []};
